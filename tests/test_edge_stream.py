"""Streaming to a real gRPC server on 127.0.0.1: exactly-once in order, reconnect, replay after restart."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from edge_node.clock import ClockEstimate
from edge_node.spool import Spool
from edge_node.streamer import Streamer
from mmer.v1 import ingest_pb2
from testkit.edge_servicer import EdgeTestServer


def frame(modality: str, seq: int) -> bytes:
    return ingest_pb2.ScoreFrame(
        device_id="dev1", subject_id="s1", modality=modality, seq=seq, probs=[0.25] * 4, model_version=1
    ).SerializeToString()


def put(spool: Spool, modality: str, n: int) -> None:
    for _ in range(n):
        spool.append(modality, frame(modality, spool.next_seq(modality)))


@pytest.fixture
async def server():
    srv = EdgeTestServer(skew_ns=2_000_000_000)
    await srv.start()
    yield srv
    await srv.stop()


def streamer_for(srv: EdgeTestServer, spool: Spool, **kw) -> Streamer:
    return Streamer(
        lambda: grpc.aio.insecure_channel(srv.target),
        spool,
        ClockEstimate(),
        "dev1",
        token="tok",
        backoff_base_s=0.05,
        **kw,
    )


async def test_every_frame_arrives_once_in_order_with_auth_and_clock(server, tmp_path):
    spool = Spool(tmp_path)
    st = streamer_for(server, spool)
    task = asyncio.create_task(st.run())
    await asyncio.wait_for(st.connected.wait(), 5)
    for _ in range(20):
        put(spool, "eeg", 5)
        put(spool, "hr", 1)
        st.wake()
        await asyncio.sleep(0.005)
    assert await st.drain(5.0)
    st.stop()
    await task
    assert server.store.seqs("eeg") == list(range(1, 101))
    assert server.store.seqs("hr") == list(range(1, 21))
    assert server.store.duplicates == 0
    assert server.store.auth[0] == "Bearer tok"
    assert abs(st.clock.offset_ns - 2_000_000_000) < 50_000_000
    # adaptive batching: what was there goes at once, what piles up in flight goes together
    assert server.store.batch_sizes[0] == 6
    assert sum(server.store.batch_sizes) == 120 and len(server.store.batch_sizes) <= 20
    # a node streams for months: its stats are counters, nothing that grows with each batch sent
    assert st.stats.batches == len(server.store.batch_sizes)
    assert all(type(v) is int for v in vars(st.stats).values()), vars(st.stats)


async def test_light_load_sends_each_frame_alone(server, tmp_path):
    spool = Spool(tmp_path)
    st = streamer_for(server, spool)
    task = asyncio.create_task(st.run())
    for _ in range(5):
        put(spool, "hr", 1)
        st.wake()
        await st.drain(2.0)
    st.stop()
    await task
    assert server.store.batch_sizes == [1, 1, 1, 1, 1]


async def test_a_batch_interval_gathers_frames_that_come_one_by_one(server, tmp_path):
    spool = Spool(tmp_path)
    st = streamer_for(server, spool, batch_interval_s=0.3)
    task = asyncio.create_task(st.run())
    started = time.monotonic()
    for _ in range(24):  # a frame every 50 ms for 1.2 s, as a device's modalities produce them
        put(spool, "eeg", 1)
        st.wake()
        await asyncio.sleep(0.05)
    await st.drain(3.0)
    st.stop()
    await task
    assert server.store.seqs("eeg") == list(range(1, 25)) and server.store.duplicates == 0
    sizes = server.store.batch_sizes
    assert sizes[0] == 1, "the first frame goes at once"
    assert 4 <= len(sizes) <= 7 and sum(sizes) == 24, sizes  # ~1.3 s / 0.3 s, not one batch per frame
    assert time.monotonic() - started < 2.5


async def test_a_full_batch_does_not_wait_for_the_interval(server, tmp_path):
    spool = Spool(tmp_path, max_frames=10_000)
    st = streamer_for(server, spool, batch_interval_s=5.0)
    task = asyncio.create_task(st.run())
    put(spool, "eeg", 1)
    st.wake()
    await asyncio.sleep(0.3)
    put(spool, "eeg", 3 * 1024)
    st.wake()
    started = time.monotonic()
    while len(server.store.seqs("eeg")) < 1 + 3 * 1024 and time.monotonic() - started < 4.0:
        await asyncio.sleep(0.02)
    assert len(server.store.seqs("eeg")) == 1 + 3 * 1024, "full batches went out within the interval"
    st.stop()
    await task
    assert server.store.batch_sizes[:4] == [1, 1024, 1024, 1024]


def test_a_batch_interval_outside_0_to_10_s_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"batch interval must be within 0\.\.10 s"):
        Streamer(lambda: None, Spool(tmp_path), ClockEstimate(), "dev1", batch_interval_s=-1.0)


async def test_server_killed_mid_stream_then_restarted_loses_nothing(server, tmp_path):
    spool = Spool(tmp_path)
    st = streamer_for(server, spool)
    task = asyncio.create_task(st.run())
    put(spool, "speech", 50)
    st.wake()
    await asyncio.sleep(0.2)
    await server.stop()
    put(spool, "speech", 50)
    st.wake()
    await asyncio.sleep(0.3)
    await server.start()
    assert await st.drain(10.0)
    st.stop()
    await task
    assert server.store.seqs("speech") == list(range(1, 101))
    assert st.stats.reconnects >= 1


async def test_server_killed_before_acking_gets_resent_frames_it_drops_as_duplicates(server, tmp_path):
    spool = Spool(tmp_path)
    st = streamer_for(server, spool)
    server.store.withhold_acks = True  # the server takes frames in, then dies before its acks go out
    task = asyncio.create_task(st.run())
    put(spool, "eeg", 40)
    st.wake()
    for _ in range(200):
        await asyncio.sleep(0.01)
        if server.store.seqs("eeg"):
            break
    received_before_kill = server.store.seqs("eeg")
    assert received_before_kill and spool.depth == 40, "frames arrived but none was acked"
    await server.stop()
    put(spool, "eeg", 10)
    server.store.withhold_acks = False
    await server.start()
    assert await st.drain(10.0)
    st.stop()
    await task
    assert server.store.seqs("eeg") == list(range(1, 51)), "every frame accepted once, in order"
    assert server.store.dropped == [("eeg", s) for s in received_before_kill]
    assert server.store.gaps == 0 and st.stats.reconnects >= 1


class SlowDiskSpool(Spool):
    """A spool whose fsync takes 0.3 s, as on a slow SD card."""

    def commit(self) -> bool:
        time.sleep(0.3)
        return super().commit()


async def test_server_dying_during_a_slow_fsync_is_a_reconnect_not_a_dead_streamer(server, tmp_path):
    spool = SlowDiskSpool(tmp_path)
    st = streamer_for(server, spool)
    task = asyncio.create_task(st.run())
    await asyncio.wait_for(st.connected.wait(), 5)
    put(spool, "eeg", 5)
    st.wake()
    await asyncio.sleep(0.1)  # the streamer is inside the fsync, about to write the batch
    await server.stop()
    await asyncio.sleep(0.5)
    await server.start()
    assert await st.drain(10.0), "the streamer survived the write on a finished call and resent"
    st.stop()
    await task
    assert server.store.seqs("eeg") == [1, 2, 3, 4, 5] and st.stats.reconnects >= 1


async def test_frames_are_fsynced_before_they_are_sent(server, tmp_path):
    spool = Spool(tmp_path, sync="batch", batch_interval_s=3600.0)
    st = streamer_for(server, spool)
    task = asyncio.create_task(st.run())
    for _ in range(5):
        put(spool, "hr", 2)
        st.wake()
        await st.drain(2.0)
    st.stop()
    await task
    # one group commit per batch sent (no time-based fsync within the hour-long interval)
    assert spool.syncs == st.stats.batches and st.stats.batches >= 5
    never = Spool(tmp_path / "never", sync="never")
    st = streamer_for(server, never)
    task = asyncio.create_task(st.run())
    put(never, "hr", 3)
    st.wake()
    assert await st.drain(2.0)
    st.stop()
    await task
    assert never.syncs == 0


async def test_agent_restart_resends_unacked_spool_frames(server, tmp_path):
    spool = Spool(tmp_path)
    put(spool, "image", 30)
    await server.stop()  # nothing can be acked: the "agent" dies with 30 frames spooled
    spool.close()
    await server.start()
    spool = Spool(tmp_path)
    assert spool.depth == 30
    st = streamer_for(server, spool)
    task = asyncio.create_task(st.run())
    assert await st.drain(5.0)
    st.stop()
    await task
    assert server.store.seqs("image") == list(range(1, 31))


async def test_trace_context_travels_in_metadata(server, tmp_path):
    from testkit.memory_tracing import memory_spans

    exporter = memory_spans()
    spool = Spool(tmp_path)
    st = streamer_for(server, spool)
    task = asyncio.create_task(st.run())
    put(spool, "hr", 3)
    st.wake()
    assert await st.drain(5.0)
    st.stop()
    await task
    names = {s.name for s in exporter.get_finished_spans()}
    opened = next(s for s in exporter.get_finished_spans() if s.name == "edge.stream_open")
    assert server.store.traceparents and f"{opened.context.trace_id:032x}" in server.store.traceparents[0]
    assert "edge.send_batch" in names
