"""Upload signed bundles to a coordinator's registry (Registry.PushModel, client-streamed chunks).

The stream is the manifest first, then every file in manifest order cut into chunks below the gRPC message
limit; the coordinator verifies the signature and digests before it accepts anything, so the trainer does
not need to be trusted beyond its key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc

from mmer.v1 import manifest_pb2, registry_pb2, registry_pb2_grpc
from mmer_core.bundle import MANIFEST_FILE, read_manifest

CHUNK_BYTES = 1 << 20  # well under the 4 MiB default message limit


class PushError(RuntimeError):
    """The registry refused a bundle or could not be reached; the message says which bundle and why."""


def bundle_dirs(root: Path) -> list[Path]:
    """ROOT itself if it is a bundle, else its sub-directories that are bundles (ROOT/<modality>/)."""
    root = Path(root)
    if (root / MANIFEST_FILE).is_file():
        return [root]
    found = sorted(p for p in root.iterdir() if (p / MANIFEST_FILE).is_file()) if root.is_dir() else []
    if not found:
        raise PushError(f"push: no bundles (directories with {MANIFEST_FILE}) under {root}")
    return found


async def _chunks(directory: Path, manifest: manifest_pb2.ModelManifest, chunk_bytes: int) -> AsyncIterator:
    yield registry_pb2.BundleChunk(manifest=manifest)
    for entry in manifest.files:
        data = (directory / entry.name).read_bytes()
        for offset in range(0, max(len(data), 1), chunk_bytes):
            piece = data[offset : offset + chunk_bytes]
            yield registry_pb2.BundleChunk(
                file=registry_pb2.FileChunk(name=entry.name, offset=offset, data=piece)
            )


async def push_bundle(
    stub: registry_pb2_grpc.RegistryStub,
    directory: Path,
    token: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> registry_pb2.PushModelResponse:
    """Stream one bundle; raise PushError with the registry's reason when it refuses."""
    manifest = read_manifest(directory)
    for entry in manifest.files:
        if not (directory / entry.name).is_file():
            raise PushError(f"push {directory}: file {entry.name} named in the manifest is missing")
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    try:
        return await stub.PushModel(_chunks(directory, manifest, chunk_bytes), metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        raise PushError(
            f"push {directory} ({manifest.modality} v{manifest.version}): {exc.code().name}: {exc.details()}"
        ) from None


async def push_all(
    target: str,
    root: Path,
    token: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    log: Callable[[str], None] = print,
) -> list[registry_pb2.PushModelResponse]:
    """Push every bundle under ROOT to the registry at HOST:PORT; stops at the first refusal."""
    dirs = bundle_dirs(root)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        results = []
        for directory in dirs:
            response = await push_bundle(stub, directory, token, chunk_bytes)
            log(
                f"pushed {directory} -> {response.modality} v{response.version} ({response.stage or 'accepted'})"
            )
            results.append(response)
        return results
