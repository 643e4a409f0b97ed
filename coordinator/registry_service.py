"""Registry over gRPC: chunked pushes and fetches, listing, rollout commands, and model watches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from coordinator.registry import MAX_BUNDLE_BYTES, Registry, RegistryError, Stored
from mmer.v1 import registry_pb2, registry_pb2_grpc

CHUNK_BYTES = 1 << 20


def chunks(stored: Stored) -> list[registry_pb2.BundleChunk]:
    """A bundle as the wire sends it: the manifest, then each file in order, 1 MiB at a time."""
    out = [registry_pb2.BundleChunk(manifest=stored.manifest)]
    for f in stored.manifest.files:
        data = stored.blobs[f.name]
        for offset in range(0, max(len(data), 1), CHUNK_BYTES):
            piece = data[offset : offset + CHUNK_BYTES]
            out.append(
                registry_pb2.BundleChunk(file=registry_pb2.FileChunk(name=f.name, offset=offset, data=piece))
            )
    return out


class RegistryService(registry_pb2_grpc.RegistryServicer):
    """gRPC face of the Registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def PushModel(
        self, request_iterator: AsyncIterator[registry_pb2.BundleChunk], context: grpc.aio.ServicerContext
    ) -> registry_pb2.PushModelResponse:
        manifest = None
        blobs: dict[str, bytearray] = {}
        total = 0
        async for chunk in request_iterator:
            if chunk.HasField("manifest"):
                if manifest is not None:
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, "push: a second manifest in one push"
                    )
                manifest = chunk.manifest
                continue
            if manifest is None:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "push: the first chunk must be the manifest"
                )
            part = chunk.file
            buf = blobs.setdefault(part.name, bytearray())
            if part.offset != len(buf):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"push: chunk of {part.name} at offset {part.offset}, expected {len(buf)}",
                )
            buf.extend(part.data)
            total += len(part.data)
            if total > MAX_BUNDLE_BYTES:
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, f"push: bundle over {MAX_BUNDLE_BYTES} bytes"
                )
        if manifest is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "push: no manifest")
        try:
            return await self.registry.push(manifest, {k: bytes(v) for k, v in blobs.items()})
        except RegistryError as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))

    async def GetModel(
        self, request: registry_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[registry_pb2.BundleChunk]:
        try:
            stored = self.registry.get(request.modality, request.version)
        except RegistryError as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
        for chunk in chunks(stored):
            yield chunk

    async def ListModels(
        self, request: registry_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListModelsResponse:
        return self.registry.list(request.modality)

    async def Rollback(
        self, request: registry_pb2.RollbackRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RollbackResponse:
        try:
            return await self.registry.rollback(request.modality, request.to_version)
        except RegistryError as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))

    async def Promote(
        self, request: registry_pb2.PromoteRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.PromoteResponse:
        try:
            return await self.registry.promote(request.modality, request.version)
        except RegistryError as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))

    async def WatchModels(
        self, request: registry_pb2.WatchModelsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[registry_pb2.ModelUpdate]:
        """The assigned version of each modality now, then whenever the assignment changes."""
        sent = {m: int(v) for m, v in request.current_versions.items()}
        highest = dict(sent)
        while True:
            generation = self.registry.generation  # read before looking, so no change slips between
            for modality in request.modalities:
                stored = self.registry.assigned(modality, request.device_id)
                if stored is None or sent.get(modality) == stored.manifest.version:
                    continue
                version = stored.manifest.version
                rollback = version < highest.get(modality, 0)
                sent[modality] = version
                highest[modality] = max(highest.get(modality, 0), version)
                yield registry_pb2.ModelUpdate(
                    manifest=stored.manifest, rollback=rollback, stage=stored.stage
                )
            async with self.registry.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.registry.changed.wait_for(
                            lambda seen=generation: self.registry.generation != seen
                        ),
                        timeout=30.0,
                    )
