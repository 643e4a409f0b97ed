"""The coordinator over real gRPC on 127.0.0.1: ingest, validation, dedup, fusion, subscribe, clock, admin."""

from __future__ import annotations

import asyncio
import re
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator.assembly import open_coordinator
from coordinator.memory_store import MemoryStore
from coordinator.redis_store import RedisStore
from coordinator.server import build_server
from coordinator.store import StoreError
from mmer.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    clock_pb2,
    clock_pb2_grpc,
    fusion_pb2,
    fusion_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
)
from mmer_core.config import CoordinatorConfig
from testkit.coordinator_helpers import batch, frame


class FlakyStore:
    """Any store, failing while `failing` is set, as a Redis outage would."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.failing = False

    async def store_frames(self, frames, receive_ns=0):
        return (await self.store_batch(frames, receive_ns))[0]

    async def store_batch(self, frames, receive_ns=0):
        if self.failing:
            raise StoreError("backend down")
        return await self.inner.store_batch(frames, receive_ns)

    async def read_fused(self, after_position, subjects, limit):
        if self.failing:
            raise StoreError("backend down")
        return await self.inner.read_fused(after_position, subjects, limit)

    async def latest(self, subjects):
        if self.failing:
            raise StoreError("backend down")
        return await self.inner.latest(subjects)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@pytest.fixture(params=["memory", "redis"])
async def coordinator(request):
    config = CoordinatorConfig(subscriber_buffer=64, max_message_bytes=64 * 1024)
    inner = MemoryStore() if request.param == "memory" else RedisStore(request.getfixturevalue("redis_url"))
    app = await open_coordinator(config, FlakyStore(inner))
    server, port, _ = await build_server(app, "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield app, channel, f"127.0.0.1:{port}"
    await channel.close()
    await server.stop(None)
    await app.close()


async def send(channel, *batches):
    """One bidi stream: send the batches, collect one Ack per batch."""
    call = ingest_pb2_grpc.IngestStub(channel).StreamScores()
    acks = []
    for b in batches:
        await call.write(b)
        acks.append(await call.read())
    await call.done_writing()
    return acks


async def test_frames_are_acked_after_storing(coordinator) -> None:
    app, channel, _address = coordinator
    acks = await send(channel, batch([frame(1), frame(2), frame(1, "eeg")], 1), batch([frame(3)], 2))
    assert [a.batch_id for a in acks] == [1, 2]
    assert {(a.modality, a.acked_seq) for a in acks[0].acks} == {("hr", 2), ("eeg", 1)}
    assert acks[1].acks[0].acked_seq == 3
    assert await app.store.acked_seq("dev-1", "hr") == 3


async def test_duplicates_across_a_reconnect_are_dropped(coordinator) -> None:
    app, channel, _address = coordinator
    await send(channel, batch([frame(s) for s in range(1, 6)]))
    (ack,) = await send(channel, batch([frame(s) for s in range(3, 8)]))  # new stream, replays 3..5
    assert ack.duplicates == 3
    assert ack.acks[0].acked_seq == 7
    assert app.counters["frames_stored"] == 7


async def test_gaps_are_accepted_and_counted(coordinator) -> None:
    app, channel, _address = coordinator
    (ack,) = await send(channel, batch([frame(1), frame(2), frame(5)]))
    assert ack.gaps == 1 and ack.acks[0].acked_seq == 5
    assert app.counters["gaps"] == 1


FAR_FUTURE_NS = 2**62  # year 2116: stays in the future however long the suite has been running

INVALID = {
    "unknown modality": (dict(modality="gsr"), "modality 'gsr' is unknown"),
    "unprintable modality": (dict(modality="\x1f"), "is unknown"),  # found by fuzzing: was INTERNAL
    "label set": (dict(labels=["happy", "angry", "sad", "bored"]), "labels .* differ from the registry"),
    "not finite": (dict(probs=[float("nan"), 0.5, 0.25, 0.25]), "probs must be finite"),
    "sum": (dict(probs=[0.5, 0.5, 0.5, 0.5]), "probs sum to 2.000000"),
    "length": (dict(probs=[0.5, 0.5]), "probs has 2 values, labels 4"),
    "future": (dict(send_ns=FAR_FUTURE_NS), "in the future"),
    "device id": (dict(device_id="bad id!"), "device_id must match"),
    "window order": (dict(window_start_ns=FAR_FUTURE_NS), "window_end_ns must be after window_start_ns"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
async def test_invalid_frames_are_refused_naming_the_field(coordinator, case: str) -> None:
    app, channel, _address = coordinator
    overrides, message = INVALID[case]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(channel, batch([frame(1), frame(2, **overrides)]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(message, err.value.details()), err.value.details()
    assert await app.store.acked_seq("dev-1", "hr") == 0, "nothing of a refused batch is stored"


async def test_sequence_zero_is_refused(coordinator) -> None:
    _, channel, _ = coordinator
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(channel, batch([frame(0)]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "seq must be >= 1" in err.value.details()


async def test_oversized_message_is_refused_by_grpc(coordinator) -> None:
    _, channel, _ = coordinator
    huge = batch([frame(s, model_id="x" * 200) for s in range(1, 1000)])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(channel, huge)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_bytes_that_are_not_the_message_are_refused_and_the_stream_keeps_what_came_before(
    coordinator,
) -> None:
    app, channel, _ = coordinator
    identity = {"request_serializer": None, "response_deserializer": None}
    call = channel.stream_stream("/mmer.v1.Ingest/StreamScores", **identity)()
    await call.write(batch([frame(1)]).SerializeToString())
    assert ingest_pb2.Ack.FromString(await call.read()).acks[0].acked_seq == 1
    await call.write(b"\xff\xff\xff")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request: not a valid message" in err.value.details()
    latest = channel.unary_unary("/mmer.v1.Fusion/Latest", **identity)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await latest(b"\x0a\xff")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert app.counters["frames_stored"] == 1


async def test_no_ack_while_the_store_fails_and_resend_is_acked(coordinator) -> None:
    app, channel, _address = coordinator
    app.store.failing = True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(channel, batch([frame(1), frame(2)]))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await app.store.acked_seq("dev-1", "hr") == 0
    app.store.failing = False
    (ack,) = await send(channel, batch([frame(1), frame(2)]))
    assert ack.acks[0].acked_seq == 2 and ack.duplicates == 0


async def test_reading_the_fused_stream_during_an_outage_is_unavailable(coordinator) -> None:
    """A subscriber resuming while the store is down gets UNAVAILABLE (retry later), not UNKNOWN."""
    app, channel, _address = coordinator
    stub = fusion_pb2_grpc.FusionStub(channel)
    app.store.failing = True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.Subscribe(fusion_pb2.SubscribeRequest(after_position="0")):
            pass
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "backend down" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Latest(fusion_pb2.LatestRequest())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    app.store.failing = False
    assert not (await stub.Latest(fusion_pb2.LatestRequest())).emotions


async def test_fusion_emits_one_emotion_per_window_and_subscribers_get_it(coordinator) -> None:
    _app, channel, _address = coordinator
    stub = fusion_pb2_grpc.FusionStub(channel)
    stream = stub.Subscribe(fusion_pb2.SubscribeRequest(subject_ids=["subj-1"]))
    await asyncio.sleep(0.1)
    base = (time.time_ns() // 1_000_000_000 - 30) * 1_000_000_000
    frames = []
    for i in range(1, 7):  # two modalities, one frame each per second, windows ending at base + i s
        frames.append(frame(i, "hr", end_ns=base + i * 1_000_000_000 - 100_000_000, label="angry"))
        frames.append(frame(i, "speech", end_ns=base + i * 1_000_000_000 - 50_000_000, label="happy"))
    await send(channel, batch(frames))
    got = [await asyncio.wait_for(stream.read(), 5) for _ in range(5)]
    stream.cancel()
    assert [e.seq for e in got] == [1, 2, 3, 4, 5]
    ends = [e.window_end_ns for e in got]
    assert ends == sorted(set(ends)), "each fusion window once, in order"
    e = got[-1]
    assert {c.modality for c in e.contributions} == {"hr", "speech"}
    assert sum(c.weight for c in e.contributions) == pytest.approx(1.0)
    assert sum(e.probs) == pytest.approx(1.0, abs=1e-5)
    # The default product rule: the geometric mean of (0.7, 0.1, 0.1, 0.1) and (0.1, 0.7, 0.1, 0.1),
    # renormalised: sqrt(0.07) / (2 sqrt(0.07) + 0.2) for happy and angry, 0.1 / (...) for the others.
    norm = 2 * 0.07**0.5 + 0.2
    assert e.strategy == "product"
    assert e.probs == pytest.approx([0.07**0.5 / norm, 0.07**0.5 / norm, 0.1 / norm, 0.1 / norm], abs=1e-5)
    assert e.latency.inference_ms == pytest.approx(2.0) and e.latency.total_ms > e.latency.network_ms
    assert e.truth_label in ("angry", "happy") and e.position


async def test_resume_from_a_position_has_no_gap_and_no_repeat(coordinator) -> None:
    _app, channel, _address = coordinator
    base = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000
    await send(channel, batch([frame(i, end_ns=base + i * 1_000_000_000 - 1) for i in range(1, 12)]))
    stub = fusion_pb2_grpc.FusionStub(channel)
    everything = stub.Subscribe(fusion_pb2.SubscribeRequest(after_position="0"))
    first = [await asyncio.wait_for(everything.read(), 5) for _ in range(10)]
    everything.cancel()
    resumed = stub.Subscribe(fusion_pb2.SubscribeRequest(after_position=first[3].position))
    await send(channel, batch([frame(i, end_ns=base + i * 1_000_000_000 - 1) for i in range(12, 15)]))
    rest = [await asyncio.wait_for(resumed.read(), 5) for _ in range(9)]
    resumed.cancel()
    assert [e.seq for e in rest] == list(range(5, 14)), "history then live, no gap, no repeat"


async def test_batched_subscribers_get_what_one_by_one_subscribers_get(coordinator) -> None:
    """SubscribeBatches: the same emotions in the same order as Subscribe (which old clients keep using),
    history then live, resumable from a position, at most max_batch per message."""
    _app, channel, _address = coordinator
    base = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000
    stub = fusion_pb2_grpc.FusionStub(channel)
    one_by_one = stub.Subscribe(fusion_pb2.SubscribeRequest(after_position="0"))
    batched = stub.SubscribeBatches(fusion_pb2.SubscribeRequest(after_position="0", max_batch=4))
    await send(channel, batch([frame(i, end_ns=base + i * 1_000_000_000 - 1) for i in range(1, 12)]))
    await send(channel, batch([frame(i, end_ns=base + i * 1_000_000_000 - 1) for i in range(12, 22)]))
    singles = [await asyncio.wait_for(one_by_one.read(), 5) for _ in range(20)]
    batches, got = [], []
    while len(got) < 20:
        message = await asyncio.wait_for(batched.read(), 5)
        batches.append(len(message.emotions))
        got += message.emotions
    one_by_one.cancel()
    batched.cancel()
    assert [e.position for e in got[:20]] == [e.position for e in singles]
    assert [e.seq for e in got[:20]] == list(range(1, 21)) and max(batches) <= 4
    resumed = stub.SubscribeBatches(fusion_pb2.SubscribeRequest(after_position=got[5].position))
    rest = (await asyncio.wait_for(resumed.read(), 5)).emotions
    resumed.cancel()
    assert [e.seq for e in rest][:3] == [7, 8, 9], "after the position, no gap and no repeat"


async def test_a_slow_subscriber_is_cut_off_and_ingest_keeps_going(coordinator) -> None:
    """A reader that stops reading fills gRPC's flow-control window, then its buffer, then is cut off."""
    app, channel, address = coordinator
    stub = fusion_pb2_grpc.FusionStub(channel)
    # Without bandwidth-delay probing the slow client's HTTP/2 window stays at its 64 KiB default.
    slow_channel = grpc.aio.insecure_channel(address, options=[("grpc.http2.bdp_probe", 0)])
    slow = fusion_pb2_grpc.FusionStub(slow_channel).Subscribe(fusion_pb2.SubscribeRequest())
    fast = stub.Subscribe(fusion_pb2.SubscribeRequest())
    await asyncio.sleep(0.1)
    base = (time.time_ns() // 1_000_000_000 - 1000) * 1_000_000_000
    received = []

    async def drain() -> None:
        async for e in fast:
            received.append(e.seq)

    async def caught_up(count: int) -> None:
        while len(received) < count:
            await asyncio.sleep(0.002)

    reader = asyncio.create_task(drain())
    bursts = 80  # 800 windows: far more than the HTTP/2 window and the 64-emotion buffer hold
    ingest_s = 0.0
    for b in range(bursts):
        frames = [frame(b * 10 + i, end_ns=base + (b * 10 + i) * 1_000_000_000) for i in range(1, 11)]
        started = time.monotonic()
        (ack,) = await send(channel, batch(frames, b + 1))
        ingest_s += time.monotonic() - started
        assert ack.acks[0].acked_seq == b * 10 + 10
        # The fast reader shares this event loop: pace by what it has read, not by the clock, so
        # it stays well inside its buffer however slow the machine (its last window waits for grace).
        await asyncio.wait_for(caught_up(b * 10), 5)

    async def read_slow() -> None:
        async for _ in slow:
            pass

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(read_slow(), 10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "resume from position" in err.value.details()
    for _ in range(50):
        if len(received) == bursts * 10:  # the last window too, once its grace ran out
            break
        await asyncio.sleep(0.05)
    reader.cancel()
    await slow_channel.close()
    assert received == list(range(1, bursts * 10 + 1)), "the fast subscriber missed nothing"
    assert app.hub.cut_off == 1
    assert ingest_s < 10, "ingest was not held up by the slow reader"


async def test_clock_health_and_admin(coordinator) -> None:
    _, channel, _ = coordinator
    t0 = time.time_ns()
    reply = await clock_pb2_grpc.ClockStub(channel).Sync(
        clock_pb2.SyncRequest(t0_device_ns=t0, device_id="dev-1")
    )
    assert reply.t0_device_ns == t0 and t0 <= reply.t1_ns <= reply.t2_ns <= time.time_ns()
    health = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="mmer.v1.Ingest")
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    await send(channel, batch([frame(i) for i in range(1, 4)]))
    stats = await admin_pb2_grpc.AdminStub(channel).GetStats(admin_pb2.GetStatsRequest())
    hops = {(h.hop, h.modality): h.summary for h in stats.latencies}
    assert hops[("inference", "hr")].count == 3
    assert hops[("inference", "")].p50_ms == pytest.approx(2.0, rel=0.1)
    assert stats.counters["frames_stored"] == 3
    assert stats.devices[0].device_id == "dev-1" and stats.devices[0].model_versions["hr"] == 1


async def test_device_state_reports_the_versions_the_edge_says_it_serves(coordinator) -> None:
    """A model loaded on the device shows up before its first window of that modality is scored."""
    _, channel, _ = coordinator
    first = batch([frame(1)])
    first.status.CopyFrom(
        ingest_pb2.EdgeStatus(device_id="dev-1", spool_depth=7, model_versions={"hr": 1, "eeg": 3})
    )
    await send(channel, first)
    stats = await admin_pb2_grpc.AdminStub(channel).GetStats(admin_pb2.GetStatsRequest())
    (device,) = stats.devices
    assert dict(device.model_versions) == {"hr": 1, "eeg": 3}
    assert device.spool_depth == 7


async def test_a_subject_and_a_device_gone_quiet_are_forgotten_while_others_keep_coming() -> None:
    """The fusion loop drops what it keeps of a subject idle for [coordinator] idle_s, ingest what it knows of
    such a device, each counted in the stats: a long-running coordinator does not keep all it ever met."""
    app = await open_coordinator(CoordinatorConfig(idle_s=0.5), MemoryStore())  # looked for every 0.05 s
    try:
        await app.ingest(batch([frame(1, subject="gone"), frame(2, subject="gone")]), time.time_ns())
        await asyncio.sleep(0.8)
        assert set(app.fuser.engine.subjects) == {"gone"}, "nothing wakes fusion while no frame comes"
        await app.ingest(batch([frame(1, device="dev-2", subject="stays")], 2), time.time_ns())
        await asyncio.sleep(0.2)
        assert set(app.fuser.engine.subjects) == {"stays"}
        stats = app.stats()
        assert stats.counters["subjects_forgotten"] == 1 and stats.counters["devices_forgotten"] == 1
        assert [d.device_id for d in stats.devices] == ["dev-2"] and stats.gauges["connected_devices"] == 1
        assert "gone" in {e.subject_id for e in await app.store.latest(None)}, "its fused emotions stay"
    finally:
        await app.close()
