"""Upload signed bundles to a coordinator's registry, one chunked PushModel call per modality."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc

from mmer.v1 import registry_pb2, registry_pb2_grpc
from mmer_core import bundle

CHUNK_BYTES = 1 << 20


def bundle_chunks(b: bundle.Bundle) -> Iterator[registry_pb2.BundleChunk]:
    """The manifest, then every file in manifest order, 1 MiB at a time."""
    yield registry_pb2.BundleChunk(manifest=b.manifest)
    for f in b.manifest.files:
        data = (b.path / f.name).read_bytes()
        for offset in range(0, max(len(data), 1), CHUNK_BYTES):
            part = registry_pb2.FileChunk(
                name=f.name, offset=offset, data=data[offset : offset + CHUNK_BYTES]
            )
            yield registry_pb2.BundleChunk(file=part)


def find_bundles(directory: Path) -> list[Path]:
    """Bundle directories: DIR itself or its children that hold a manifest."""
    if (directory / bundle.MANIFEST_FILE).is_file():
        return [directory]
    found = sorted(p.parent for p in directory.glob(f"*/{bundle.MANIFEST_FILE}"))
    if not found:
        raise ValueError(f"{directory}: no bundle (no {bundle.MANIFEST_FILE} in it or its subdirectories)")
    return found


def open_channel(address: str, tls_ca: Path | None) -> grpc.Channel:
    """A channel to the coordinator: TLS verified against tls_ca when given, plaintext otherwise."""
    if tls_ca is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes()))


def push_bundles(
    address: str,
    directory: Path,
    token: str = "",
    public_key_path: Path | None = None,
    timeout_s: float = 60.0,
    tls_ca: Path | None = None,
) -> list[registry_pb2.PushModelResponse]:
    """Verify each bundle locally (when the public key is at hand), then push it."""
    key_path = public_key_path or directory / "keys" / bundle.PUBLIC_KEY_FILE
    public = bundle.load_public_key(key_path) if key_path.is_file() else None
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    out = []
    with open_channel(address, tls_ca) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        for path in find_bundles(directory):
            b = (
                bundle.read_bundle(path, public)
                if public
                else bundle.Bundle(path, bundle.read_manifest(path))
            )
            out.append(stub.PushModel(bundle_chunks(b), metadata=metadata, timeout=timeout_s))
    return out
