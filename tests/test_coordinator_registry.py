"""Registry over real gRPC: signed pushes only, versions, watch, promote/rollback and staged rollout."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import grpc
import pytest

from coordinator.assembly import open_coordinator
from coordinator.memory_store import MemoryStore
from coordinator.registry import RolloutRule, in_canary
from coordinator.server import build_server
from mmer.v1 import ingest_pb2_grpc, registry_pb2, registry_pb2_grpc
from mmer_core import bundle
from mmer_core.config import CoordinatorConfig
from testkit.coordinator_helpers import MODEL, batch, chunks, frame, signed


@pytest.fixture()
def keys(tmp_path: Path):
    priv, pub = bundle.generate_keypair(tmp_path / "keys")
    return bundle.load_private_key(priv), bundle.load_public_key(pub)


@pytest.fixture()
async def registry(keys):
    config = CoordinatorConfig(rollout_fraction=0.5)
    rule = RolloutRule(fraction=0.5, min_frames=5, min_confidence_ratio=0.8)
    app = await open_coordinator(config, MemoryStore(), keys[1], rollout=rule)
    server, port, _ = await build_server(app, "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield app, channel, registry_pb2_grpc.RegistryStub(channel), keys[0]
    await channel.close()
    await server.stop(None)
    await app.close()


async def test_signed_bundle_is_stored_and_served_back_intact(registry) -> None:
    _, _, stub, priv = registry
    reply = await stub.PushModel(chunks(signed(priv, 1), {"model.onnx": MODEL}))
    assert (reply.modality, reply.version, reply.stage) == ("hr", 1, "stable")
    parts = [c async for c in stub.GetModel(registry_pb2.GetModelRequest(modality="hr", version=1))]
    assert parts[0].manifest.version == 1 and len(parts) == 3
    data = b"".join(p.file.data for p in parts[1:])
    assert hashlib.sha256(data).digest() == hashlib.sha256(MODEL).digest()
    listed = await stub.ListModels(registry_pb2.ListModelsRequest(modality="hr"))
    assert [(v.version, v.stage, v.bytes) for v in listed.versions] == [(1, "stable", len(MODEL))]


async def test_tampered_and_unsigned_bundles_are_refused(registry, tmp_path: Path) -> None:
    _, _, stub, priv = registry
    tampered_file = bytearray(MODEL)
    tampered_file[10] ^= 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PushModel(chunks(signed(priv, 1), {"model.onnx": bytes(tampered_file)}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model.onnx does not match its sha256" in err.value.details()
    edited = signed(priv, 1)
    edited.version = 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PushModel(chunks(edited, {"model.onnx": MODEL}))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "signature does not verify" in err.value.details()
    unsigned = signed(priv, 1)
    unsigned.ClearField("signature")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PushModel(chunks(unsigned, {"model.onnx": MODEL}))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "unsigned manifest" in err.value.details()
    foreign, _ = bundle.generate_keypair(tmp_path / "foreign")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PushModel(chunks(signed(bundle.load_private_key(foreign), 1), {"model.onnx": MODEL}))
    assert "signed by unknown key" in err.value.details()
    listed = await stub.ListModels(registry_pb2.ListModelsRequest())
    assert list(listed.versions) == []


async def test_push_without_a_trainer_key_is_refused(keys) -> None:
    app = await open_coordinator(CoordinatorConfig(), MemoryStore(), None)
    server, port, _ = await build_server(app, "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await registry_pb2_grpc.RegistryStub(channel).PushModel(
                chunks(signed(keys[0], 1), {"model.onnx": MODEL})
            )
    await server.stop(None)
    await app.close()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--trainer-pubkey" in err.value.details()


def devices_split(version: int, n: int = 40) -> tuple[list[str], list[str]]:
    ids = [f"dev-{i}" for i in range(n)]
    canary = [d for d in ids if in_canary(d, "hr", version, 0.5)]
    return canary, [d for d in ids if d not in canary]


async def test_watch_gets_current_then_canary_only_on_canary_devices(registry) -> None:
    _, _, stub, priv = registry
    await stub.PushModel(chunks(signed(priv, 1, model=b"v1"), {"model.onnx": b"v1"}))
    canary, stable = devices_split(2)
    assert canary and stable
    watches = {
        d: stub.WatchModels(registry_pb2.WatchModelsRequest(device_id=d, modalities=["hr"]))
        for d in (canary[0], stable[0])
    }
    for call in watches.values():
        first = await call.read()
        assert (first.manifest.version, first.stage, first.manifest.files[0].name) == (
            1,
            "stable",
            "model.onnx",
        )
    reply = await stub.PushModel(chunks(signed(priv, 2, model=b"v2"), {"model.onnx": b"v2"}))
    assert reply.stage == "canary"
    update = await asyncio.wait_for(watches[canary[0]].read(), 2)
    assert (update.manifest.version, update.stage) == (2, "canary")
    await stub.Promote(registry_pb2.PromoteRequest(modality="hr", version=2))
    update = await asyncio.wait_for(watches[stable[0]].read(), 2)  # its first news since v1: the promotion
    assert (update.manifest.version, update.stage) == (2, "stable")
    back = await stub.Rollback(registry_pb2.RollbackRequest(modality="hr", reason="test"))
    assert back.version == 1
    for call in watches.values():
        update = await asyncio.wait_for(call.read(), 2)
        assert (update.manifest.version, update.rollback) == (1, True)
        call.cancel()
    listed = await stub.ListModels(registry_pb2.ListModelsRequest(modality="hr"))
    assert [(v.version, v.stage) for v in listed.versions] == [(1, "stable"), (2, "rolled_back")]


async def _stream(channel, frames) -> None:
    call = ingest_pb2_grpc.IngestStub(channel).StreamScores()
    for i, f in enumerate(frames):
        await call.write(batch([f], i + 1))
        await call.read()
    await call.done_writing()


@pytest.mark.parametrize(
    ("canary_label_probs", "expected"),
    [((0.7, 0.1, 0.1, 0.1), "stable"), ((0.3, 0.25, 0.25, 0.2), "rolled_back")],
)
async def test_staged_rollout_promotes_or_rolls_back_on_canary_confidence(
    registry, canary_label_probs, expected
) -> None:
    app, channel, stub, priv = registry
    await stub.PushModel(chunks(signed(priv, 1, model=b"v1"), {"model.onnx": b"v1"}))
    await stub.PushModel(chunks(signed(priv, 2, model=b"v2"), {"model.onnx": b"v2"}))
    canary, stable = devices_split(2)
    frames = [frame(s, device=stable[0], model_version=1) for s in range(1, 6)]
    frames += [
        frame(s, device=canary[0], model_version=2, probs=list(canary_label_probs)) for s in range(1, 5)
    ]
    await _stream(channel, frames)
    listed = await stub.ListModels(registry_pb2.ListModelsRequest(modality="hr"))
    assert [v.stage for v in listed.versions] == ["stable", "canary"]  # 4 canary frames: not decided yet
    await _stream(channel, [frame(5, device=canary[0], model_version=2, probs=list(canary_label_probs))])
    listed = await stub.ListModels(registry_pb2.ListModelsRequest(modality="hr"))
    assert listed.versions[1].stage == expected
    assert app.registry.target(stable[0], "hr") == (2 if expected == "stable" else 1)


async def test_fusion_weighs_each_pushed_model_by_its_validation_accuracy(registry) -> None:
    app, channel, stub, priv = registry
    for modality, accuracy in (("hr", 0.9), ("image", 0.4)):
        await stub.PushModel(chunks(signed(priv, 1, modality, b"m", accuracy), {"model.onnx": b"m"}))
    assert app.model_weights == {("hr", 1): pytest.approx(0.651), ("image", 1): pytest.approx(0.151)}
    frames = [
        frame(s, m, label=label) for s in range(1, 7) for m, label in (("hr", "sad"), ("image", "happy"))
    ]
    await _stream(channel, frames)
    fused = await app.store.read_fused("0", None, 100)
    assert len(fused) >= 2
    for emotion in fused:  # 4 classes: weights are accuracy above chance (0.25), + 0.001
        weights = {c.modality: c.weight for c in emotion.contributions}
        assert weights == {"hr": pytest.approx(0.651 / 0.802), "image": pytest.approx(0.151 / 0.802)}
        assert emotion.label == "sad", "the more accurate model wins a disagreement"
