"""The Registry gRPC service: chunked push and fetch of signed bundles, watch, list, promote, rollback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from coordinator.registry import Registry
from mmer.v1 import manifest_pb2, registry_pb2, registry_pb2_grpc

CHUNK_BYTES = 1024 * 1024
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


class RegistryService(registry_pb2_grpc.RegistryServicer):
    """Thin gRPC face of the Registry; a RegistryError ends the call with the status it names (rpc_errors)."""

    def __init__(self, registry: Registry, on_change=None) -> None:
        self.registry = registry
        self.on_change = on_change or (lambda: None)

    async def PushModel(
        self, request_iterator: AsyncIterator[registry_pb2.BundleChunk], context: grpc.aio.ServicerContext
    ) -> registry_pb2.PushModelResponse:
        manifest: manifest_pb2.ModelManifest | None = None
        blobs: dict[str, bytearray] = {}
        total = 0
        async for chunk in request_iterator:
            if chunk.HasField("manifest"):
                if manifest is not None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "manifest: sent twice")
                manifest = chunk.manifest
            elif chunk.HasField("file"):
                part = chunk.file
                data = blobs.setdefault(part.name, bytearray())
                if part.offset != len(data):
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"file.offset: {part.name} chunk at {part.offset}, expected {len(data)}",
                    )
                data.extend(part.data)
                total += len(part.data)
                if total > MAX_BUNDLE_BYTES:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "bundle exceeds the size limit")
        if manifest is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "manifest: missing (unsigned bundle)")
        response = await self.registry.push(manifest, {k: bytes(v) for k, v in blobs.items()})
        self.on_change()
        return response

    async def GetModel(
        self, request: registry_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[registry_pb2.BundleChunk]:
        version = request.version or self.registry.target("", request.modality)
        found = await self.registry.store.get_model(request.modality, version)
        if found is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"{request.modality} v{version} is not in the registry"
            )
        manifest, blobs = found
        yield registry_pb2.BundleChunk(manifest=manifest)
        for f in manifest.files:
            data = blobs[f.name]
            for offset in range(0, max(len(data), 1), CHUNK_BYTES):
                yield registry_pb2.BundleChunk(
                    file=registry_pb2.FileChunk(
                        name=f.name, offset=offset, data=data[offset : offset + CHUNK_BYTES]
                    )
                )

    async def WatchModels(
        self, request: registry_pb2.WatchModelsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[registry_pb2.ModelUpdate]:
        watcher = self.registry.watch(request.device_id, request.modalities or self.registry.rollouts.keys())
        try:
            while True:
                yield await watcher.queue.get()
        finally:
            self.registry.unwatch(watcher)

    async def ListModels(
        self, request: registry_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListModelsResponse:
        return registry_pb2.ListModelsResponse(versions=await self.registry.versions(request.modality))

    async def Rollback(
        self, request: registry_pb2.RollbackRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RollbackResponse:
        response = await self.registry.rollback(request.modality, request.to_version, request.reason)
        self.on_change()
        return response

    async def Promote(
        self, request: registry_pb2.PromoteRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.PromoteResponse:
        response = await self.registry.promote(request.modality, request.version)
        self.on_change()
        return response
