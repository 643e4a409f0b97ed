"""Pushing signed bundles to a real grpc.aio Registry servicer that verifies them with mmer_core.bundle."""

from __future__ import annotations

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mmer.v1 import manifest_pb2, registry_pb2, registry_pb2_grpc
from mmer_core import bundle
from mmer_core.taxonomy import QUADRANTS
from trainer.push import PushError, bundle_dirs, push_all

TOKEN = "secret-token"


class VerifyingRegistry(registry_pb2_grpc.RegistryServicer):
    """Reassembles chunks in order, checks auth, signature and digests, and records what it accepted."""

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        self.public_key = public_key
        self.accepted: dict[str, dict[str, bytes]] = {}
        self.chunks_seen = 0

    async def PushModel(self, request_iterator, context):
        if dict(context.invocation_metadata()).get("authorization") != f"Bearer {TOKEN}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        manifest, blobs = None, {}
        async for chunk in request_iterator:
            self.chunks_seen += 1
            if chunk.HasField("manifest"):
                manifest = chunk.manifest
                continue
            buf = blobs.setdefault(chunk.file.name, bytearray())
            if chunk.file.offset != len(buf):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{chunk.file.name}: offset gap")
            buf.extend(chunk.file.data)
        if manifest is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no manifest")
        try:
            bundle.verify_manifest(manifest, self.public_key)
            bundle.verify_blobs(manifest, {k: bytes(v) for k, v in blobs.items()})
        except bundle.BundleError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.accepted[manifest.modality] = {k: bytes(v) for k, v in blobs.items()}
        return registry_pb2.PushModelResponse(
            modality=manifest.modality, version=manifest.version, stage="candidate"
        )


def _write(tmp_path, modality: str, model_bytes: bytes):
    key_dir = tmp_path / "keys"
    if not (key_dir / bundle.PRIVATE_KEY_FILE).exists():
        bundle.generate_keypair(key_dir)
    manifest = manifest_pb2.ModelManifest(modality=modality, version=3, output_name="probs")
    manifest.taxonomy.CopyFrom(QUADRANTS.to_proto())
    files = {"model.int8.onnx": (model_bytes, "model"), "samples.npz": (b"npz" * 10, "samples")}
    bundle.write_bundle(
        tmp_path / "out" / modality,
        manifest,
        files,
        bundle.load_private_key(key_dir / bundle.PRIVATE_KEY_FILE),
    )
    return bundle.load_public_key(key_dir / bundle.PUBLIC_KEY_FILE)


@pytest.fixture
async def registry(tmp_path):
    public = _write(tmp_path, "hr", bytes(range(256)) * 40)  # 10 KiB -> several chunks
    _write(tmp_path, "speech", b"\x01" * 3000)
    servicer = VerifyingRegistry(public)
    server = grpc.aio.server()
    registry_pb2_grpc.add_RegistryServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}", tmp_path / "out"
    await server.stop(None)


async def test_push_uploads_every_bundle_in_chunks_and_registry_verifies(registry):
    servicer, target, out = registry
    responses = await push_all(target, out, TOKEN, chunk_bytes=1024, log=lambda s: None)
    assert [(r.modality, r.version) for r in responses] == [("hr", 3), ("speech", 3)]
    assert servicer.accepted["hr"]["model.int8.onnx"] == bytes(range(256)) * 40
    # hr: manifest + 10 model chunks of 1 KiB + 1 samples chunk; speech: manifest + 3 + 1
    assert servicer.chunks_seen == (1 + 10 + 1) + (1 + 3 + 1)


async def test_push_of_a_tampered_file_is_refused_with_the_reason(registry):
    servicer, target, out = registry
    path = out / "hr" / "model.int8.onnx"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PushError, match=r"hr v3\): INVALID_ARGUMENT"):
        await push_all(target, out / "hr", TOKEN, log=lambda s: None)
    assert "hr" not in servicer.accepted


async def test_push_without_the_token_is_refused(registry):
    _, target, out = registry
    with pytest.raises(PushError, match="UNAUTHENTICATED"):
        await push_all(target, out, None, log=lambda s: None)


def test_push_of_a_directory_without_bundles_is_a_clear_error(tmp_path):
    with pytest.raises(PushError, match="no bundles"):
        bundle_dirs(tmp_path)


async def test_cli_push_exit_codes(registry):
    import asyncio

    from mmer_core.cli import main

    _, target, out = registry
    ok = await asyncio.to_thread(
        main, ["trainer", "push", "--coordinator", target, "--token", TOKEN, str(out)]
    )
    assert ok == 0
    refused = await asyncio.to_thread(
        main, ["trainer", "push", "--coordinator", target, "--token", "wrong", str(out)]
    )
    assert refused == 1
