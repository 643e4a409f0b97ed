"""The registry over real gRPC: signed pushes, refusals, watches, staged rollout, promotion, rollback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from coordinator.memory_store import MemoryStore
from coordinator.registry import is_canary
from coordinator.server import build_server
from coordinator.service import Coordinator
from mmer.v1 import manifest_pb2, registry_pb2, registry_pb2_grpc
from mmer_core import bundle
from mmer_core.config import CoordinatorConfig
from mmer_core.taxonomy import QUADRANTS
from trainer.push import bundle_chunks, push_bundles


def make_bundle(
    root: Path, key, modality: str = "hr", version: int = 1, payload: bytes = b"model"
) -> bundle.Bundle:
    manifest = manifest_pb2.ModelManifest(
        modality=modality, version=version, taxonomy=QUADRANTS.to_proto(),
        input=manifest_pb2.InputSpec(name="hrv", shape=[10], dtype="float32"), output_name="probs",
    )  # fmt: skip
    files = {
        "model.int8.onnx": (payload * 1000 + bytes([version]), "model"),
        "samples.npz": (b"s" * 10, "samples"),
    }
    return bundle.write_bundle(root / f"{modality}-v{version}", manifest, files, key)


@pytest.fixture()
def keys(tmp_path: Path):
    priv, pub = bundle.generate_keypair(tmp_path / "keys")
    return bundle.load_private_key(priv), bundle.load_public_key(pub), pub


@pytest.fixture()
async def registry(keys):
    _, public, _ = keys
    app = Coordinator(CoordinatorConfig(rollout_fraction=0.5), MemoryStore(), public)
    server, port, _ = await build_server(app, "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield app, registry_pb2_grpc.RegistryStub(channel), f"127.0.0.1:{port}"
    await channel.close()
    await server.stop(None)


async def push(stub, b: bundle.Bundle) -> registry_pb2.PushModelResponse:
    return await stub.PushModel(bundle_chunks(b))


async def test_signed_bundle_is_stored_and_served_back_byte_for_byte(registry, keys, tmp_path: Path) -> None:
    app, stub, _ = registry
    b = make_bundle(tmp_path, keys[0], payload=b"x" * 700)  # 700 kB: spans several 1 MiB-or-less chunks
    reply = await push(stub, b)
    assert (reply.modality, reply.version, reply.stage) == ("hr", 1, "serving")
    listed = await stub.ListModels(registry_pb2.ListModelsRequest())
    assert [(v.modality, v.version, v.stage) for v in listed.versions] == [("hr", 1, "serving")]
    got = {}
    async for chunk in stub.GetModel(registry_pb2.GetModelRequest(modality="hr")):
        if chunk.HasField("manifest"):
            assert chunk.manifest == b.manifest
        else:
            got[chunk.file.name] = got.get(chunk.file.name, b"") + chunk.file.data
    assert got["model.int8.onnx"] == (b.path / "model.int8.onnx").read_bytes()
    assert app.registry.labels("hr") == QUADRANTS.labels


async def test_tampered_unsigned_foreign_and_old_bundles_are_refused(registry, keys, tmp_path: Path) -> None:
    _, stub, _ = registry
    good = make_bundle(tmp_path, keys[0], version=2)
    await push(stub, good)

    tampered = make_bundle(tmp_path / "t", keys[0], version=3)
    (tampered.path / "model.int8.onnx").write_bytes(b"evil" * 100)
    unsigned = make_bundle(tmp_path / "u", keys[0], version=4)
    unsigned.manifest.ClearField("signature")
    other_key = bundle.load_private_key(bundle.generate_keypair(tmp_path / "other")[0])
    foreign = make_bundle(tmp_path / "f", other_key, version=5)
    older = make_bundle(tmp_path / "o", keys[0], version=1)
    cases = [
        (tampered, grpc.StatusCode.PERMISSION_DENIED, "does not match its sha256"),
        (unsigned, grpc.StatusCode.PERMISSION_DENIED, "unsigned"),
        (foreign, grpc.StatusCode.PERMISSION_DENIED, "unknown key"),
        (older, grpc.StatusCode.ALREADY_EXISTS, "must exceed the newest stored"),
    ]
    for b, code, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await push(stub, b)
        assert err.value.code() == code, message
        assert message in err.value.details()
    listed = await stub.ListModels(registry_pb2.ListModelsRequest())
    assert [v.version for v in listed.versions] == [2], "nothing refused was stored"


async def test_malformed_pushes_are_refused(registry, keys, tmp_path: Path) -> None:
    _, stub, _ = registry
    b = make_bundle(tmp_path, keys[0])
    chunks = list(bundle_chunks(b))
    for stream, message in (
        (chunks[1:], "first chunk must be the manifest"),
        ([chunks[0], chunks[0]], "a second manifest"),
        ([chunks[0], registry_pb2.BundleChunk(file=registry_pb2.FileChunk(name="model.int8.onnx", offset=5))],
         "offset 5, expected 0"),
    ):  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.PushModel(iter(stream))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in err.value.details()


async def test_staged_rollout_promotion_and_rollback_reach_watchers(registry, keys, tmp_path: Path) -> None:
    _, stub, _ = registry
    canary = next(d for d in (f"dev-{i}" for i in range(100)) if is_canary(d, 0.5))
    regular = next(d for d in (f"dev-{i}" for i in range(100)) if not is_canary(d, 0.5))
    await push(stub, make_bundle(tmp_path, keys[0], version=1))
    watches = {
        d: stub.WatchModels(registry_pb2.WatchModelsRequest(device_id=d, modalities=["hr", "eeg"]))
        for d in (canary, regular)
    }

    queues = {d: asyncio.Queue() for d in watches}

    async def pump(device: str) -> None:  # cancelling a read would cancel the RPC: read in the background
        async for update in watches[device]:
            await queues[device].put(update)

    pumps = [asyncio.create_task(pump(d)) for d in watches]

    async def next_update(device: str) -> registry_pb2.ModelUpdate:
        return await asyncio.wait_for(queues[device].get(), 5)

    for d in watches:
        first = await next_update(d)
        assert (first.manifest.version, first.stage, first.rollback) == (1, "serving", False)

    staged = await push(stub, make_bundle(tmp_path, keys[0], version=2))
    assert staged.stage == "staged"
    update = await next_update(canary)
    assert (update.manifest.version, update.stage) == (2, "staged")
    await asyncio.sleep(0.3)
    assert queues[regular].empty(), "devices outside the canary fraction keep the serving version"

    promoted = await stub.Promote(registry_pb2.PromoteRequest(modality="hr", version=2))
    assert promoted.stage == "serving"
    assert (await next_update(regular)).manifest.version == 2

    rolled = await stub.Rollback(registry_pb2.RollbackRequest(modality="hr", reason="confidence collapsed"))
    assert rolled.version == 1
    for d in watches:
        update = await next_update(d)
        assert (update.manifest.version, update.rollback) == (1, True), d
    listed = {v.version: v.stage for v in (await stub.ListModels(registry_pb2.ListModelsRequest())).versions}
    assert listed == {1: "serving", 2: "rolled_back"}
    for w in watches.values():
        w.cancel()
    for task in pumps:
        task.cancel()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Promote(registry_pb2.PromoteRequest(modality="hr", version=2))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_trainer_push_command_uploads_a_pipeline_directory(registry, keys, tmp_path: Path) -> None:
    app, _, address = registry
    out = tmp_path / "models"
    (out / "keys").mkdir(parents=True)
    (out / "keys" / bundle.PUBLIC_KEY_FILE).write_bytes(keys[2].read_bytes())
    for m in ("hr", "eeg"):
        b = make_bundle(tmp_path, keys[0], modality=m)
        (out / m).mkdir()
        for f in b.path.iterdir():
            (out / m / f.name).write_bytes(f.read_bytes())
    replies = await asyncio.to_thread(push_bundles, address, out)
    assert sorted((r.modality, r.version) for r in replies) == [("eeg", 1), ("hr", 1)]
    assert app.registry.labels("eeg") == QUADRANTS.labels


async def test_pushes_need_a_trainer_key(tmp_path: Path, keys) -> None:
    app = Coordinator(CoordinatorConfig(), MemoryStore(), None)
    server, port, _ = await build_server(app, "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await registry_pb2_grpc.RegistryStub(channel).PushModel(
                bundle_chunks(make_bundle(tmp_path, keys[0]))
            )
    await server.stop(None)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
