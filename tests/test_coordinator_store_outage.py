"""A Redis that goes away reaches every client as UNAVAILABLE (retry later), never as INTERNAL or UNKNOWN:
a real redis-server is stopped under a running coordinator, and each kind of call is made against it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from coordinator.assembly import open_coordinator
from coordinator.memory_store import MemoryStore
from coordinator.redis_store import RedisStore
from coordinator.server import build_server
from mmer.v1 import fusion_pb2, fusion_pb2_grpc, ingest_pb2_grpc, registry_pb2, registry_pb2_grpc
from mmer_core import bundle
from mmer_core.config import CoordinatorConfig
from testkit.coordinator_helpers import batch, chunks, frame, signed
from testkit.fault_cluster import RedisProcess
from testkit.localhost import start_redis

pytestmark = pytest.mark.redis
SMALL = b"m" * 1000


@pytest.fixture()
async def stopped_redis(tmp_path: Path):
    """A coordinator whose Redis held a stable and a canary version of the hr model, then was killed."""
    priv_path, pub_path = bundle.generate_keypair(tmp_path / "keys")
    priv = bundle.load_private_key(priv_path)
    proc, url = start_redis(tmp_path)
    app = await open_coordinator(
        CoordinatorConfig(rollout_fraction=0.5), RedisStore(url), bundle.load_public_key(pub_path)
    )
    server, port, _ = await build_server(app, "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    registry = registry_pb2_grpc.RegistryStub(channel)
    for version in (1, 2):
        await registry.PushModel(chunks(signed(priv, version, model=SMALL), {"model.onnx": SMALL}))
    proc.kill()
    proc.wait()
    yield channel, priv, app
    await channel.close()
    await server.stop(None)
    await app.close()


async def _ingest(channel: grpc.aio.Channel, _priv) -> None:
    call = ingest_pb2_grpc.IngestStub(channel).StreamScores()
    await call.write(batch([frame(1)]))
    await call.read()


async def _get_model(channel: grpc.aio.Channel, _priv) -> None:
    async for _ in registry_pb2_grpc.RegistryStub(channel).GetModel(
        registry_pb2.GetModelRequest(modality="hr", version=1)
    ):
        pass


async def _subscribe_from(channel: grpc.aio.Channel, _priv) -> None:
    async for _ in fusion_pb2_grpc.FusionStub(channel).Subscribe(
        fusion_pb2.SubscribeRequest(after_position="0-1")
    ):
        pass


CALLS = {
    "ingest": _ingest,
    "latest": lambda ch, _: fusion_pb2_grpc.FusionStub(ch).Latest(fusion_pb2.LatestRequest()),
    "subscribe from a position": _subscribe_from,
    "models: get": _get_model,
    "models: push": lambda ch, priv: registry_pb2_grpc.RegistryStub(ch).PushModel(
        chunks(signed(priv, 3, model=SMALL), {"model.onnx": SMALL})
    ),
    "manifests: list": lambda ch, _: registry_pb2_grpc.RegistryStub(ch).ListModels(
        registry_pb2.ListModelsRequest()
    ),
    "rollouts: promote": lambda ch, _: registry_pb2_grpc.RegistryStub(ch).Promote(
        registry_pb2.PromoteRequest(modality="hr", version=2)
    ),
    "rollouts: rollback": lambda ch, _: registry_pb2_grpc.RegistryStub(ch).Rollback(
        registry_pb2.RollbackRequest(modality="hr")
    ),
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_stopped_redis_is_unavailable_to_every_call(stopped_redis, call: str) -> None:
    channel, priv, _ = stopped_redis
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await CALLS[call](channel, priv)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
    assert failed.value.details().startswith("store unavailable: redis: "), failed.value.details()


ROLLOUT_CHANGES = {
    "promote": lambda registry: registry.Promote(registry_pb2.PromoteRequest(modality="hr", version=2)),
    "rollback": lambda registry: registry.Rollback(registry_pb2.RollbackRequest(modality="hr")),
    "rollback to v1": lambda registry: registry.Rollback(
        registry_pb2.RollbackRequest(modality="hr", to_version=1)
    ),
}


@pytest.mark.parametrize("change", sorted(ROLLOUT_CHANGES))
async def test_a_rollout_change_the_store_refused_leaves_the_replica_as_stored(stopped_redis, change) -> None:
    """The registry writes the store first: with Redis gone, the replica keeps serving the rollout the store
    holds (stable v1, canary v2 on some devices), and no watcher hears of a change that was not made."""
    channel, _, app = stopped_redis
    registry = app.registry
    devices = [f"dev-{i}" for i in range(40)]
    before = (registry.rollouts["hr"].encode(), [registry.target(d, "hr") for d in devices])
    assert sorted(set(before[1])) == [1, 2]  # both versions serve someone: a change would show
    watcher = registry.watch("dev-0", ["hr"])
    watcher.queue.get_nowait()  # the current version, sent on watching
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await ROLLOUT_CHANGES[change](registry_pb2_grpc.RegistryStub(channel))
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
    assert (registry.rollouts["hr"].encode(), [registry.target(d, "hr") for d in devices]) == before
    assert watcher.queue.empty()
    assert "hr" in registry.trials  # the canary's trial goes on


async def test_a_canary_decision_the_store_refused_waits_for_a_later_frame(stopped_redis) -> None:
    """Frames reach the registry after they are stored: an outage while a canary's trial is decided must not
    fail them, and the trial stays open (same rollout, same evidence) to be decided when the store is back."""
    _, _, app = stopped_redis
    registry = app.registry
    before = registry.rollouts["hr"].encode()
    for seq in range(1, registry.rule.min_frames + 2):
        await registry.observe(frame(seq, model_version=2))
    assert registry.rollouts["hr"].encode() == before
    assert registry.trials["hr"].canary_frames == registry.rule.min_frames + 1


async def test_a_push_the_store_refused_leaves_no_trace_of_its_modality(stopped_redis) -> None:
    channel, priv, app = stopped_redis
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await registry_pb2_grpc.RegistryStub(channel).PushModel(
            chunks(signed(priv, 1, modality="eeg", model=SMALL), {"model.onnx": SMALL})
        )
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
    assert "eeg" not in app.registry.rollouts and ("eeg", 1) not in app.registry.manifests


async def test_a_call_the_table_does_not_know_stays_internal() -> None:
    """Only the table's exceptions are mapped: a bug is not dressed up as an outage."""

    class BrokenStore(MemoryStore):
        async def latest(self, subjects):
            raise KeyError("a bug")

    app = await open_coordinator(CoordinatorConfig(), BrokenStore())
    server, port, _ = await build_server(app, "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await fusion_pb2_grpc.FusionStub(channel).Latest(fusion_pb2.LatestRequest())
    await server.stop(None)
    await app.close()
    assert failed.value.code() == grpc.StatusCode.UNKNOWN


async def test_emotions_fused_while_redis_is_away_wait_for_it_and_count_the_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fusion goes on without the store: what it fuses waits in the outbox, is published once Redis answers
    again, and its publish hop shows how long it waited."""
    redis_process = RedisProcess(tmp_path / "redis")
    redis_process.start()
    app = await open_coordinator(CoordinatorConfig(fusion_grace_s=0.5), RedisStore(redis_process.url))
    reader = RedisStore(redis_process.url)
    try:
        await app.ingest(batch([frame(1)]), time.time_ns())
        redis_process.kill()  # before the window's grace runs out: it is fused while Redis is away
        await asyncio.sleep(2.0)
        redis_process.start()  # on the same port
        fused: list[fusion_pb2.FusedEmotion] = []
        for _ in range(100):
            fused = await reader.read_fused("", None, 10)
            if fused:
                break
            await asyncio.sleep(0.1)
        (emotion,) = fused
        assert emotion.subject_id == "subj-1" and emotion.position
        assert emotion.latency.publish_ms >= 1500, "the wait for the store is the publish hop's"
        assert app.measures.counters["fused_emotions"] == 1
        said = [r.getMessage() for r in caplog.records if r.name == "mmer.coordinator.fusion"]
        assert len(said) == 2, "one warning when the outage starts (not one per retry), one when it ends"
        assert "retrying every 0.1 s" in said[0] and "again after" in said[1]
    finally:
        await reader.close()
        await app.close()
        redis_process.kill()
