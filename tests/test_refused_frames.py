"""A frame the coordinator refuses as invalid is set aside by the edge: the rest of the stream flows on.

Real coordinator and real streamer over gRPC on 127.0.0.1; the bad frame sits in the spool between
good ones, as one would after a bug on the device.
"""

from __future__ import annotations

import asyncio

import grpc

from coordinator.assembly import open_coordinator
from coordinator.memory_store import MemoryStore
from coordinator.server import build_server
from edge_node.clock import ClockEstimate
from edge_node.spool import Spool
from edge_node.streamer import Streamer
from mmer_core.config import CoordinatorConfig
from mmer_core.wire import format_invalid_frame, parse_invalid_frame
from testkit.coordinator_helpers import frame


async def test_refused_frame_is_set_aside_and_every_other_frame_is_acked(tmp_path) -> None:
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    server, port, _ = await build_server(app, "127.0.0.1:0")
    spool = Spool(tmp_path / "spool")
    for seq in range(1, 9):
        bad = {"probs": [0.5, 0.5, 0.5, 0.5]} if seq == 4 else {}
        spool.append("hr", frame(seq, device="dev-1", **bad).SerializeToString())
    streamer = Streamer(
        lambda: grpc.aio.insecure_channel(f"127.0.0.1:{port}"), spool, ClockEstimate(), "dev-1"
    )
    task = asyncio.create_task(streamer.run())
    try:
        for _ in range(200):
            if spool.depth == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        streamer.stop()
        await task
        await server.stop(None)
        await app.close()
        spool.close()
    assert spool.depth == 0, "the bad frame no longer blocks the frames after it"
    assert spool.refused == 1 and streamer.stats.refused == 1
    assert await app.store.acked_seq("dev-1", "hr") == 8
    assert app.counters["invalid"] == 1 and app.counters["frames_stored"] == 7 and app.counters["gaps"] == 1


def test_invalid_frame_metadata_parses_only_what_the_coordinator_writes() -> None:
    assert format_invalid_frame("hr", 12) == "hr#12"
    assert format_invalid_frame("\x1f", 1) is None and format_invalid_frame("hé", 1) is None, (
        "gRPC refuses those"
    )
    assert parse_invalid_frame("hr#12") == ("hr", 12)
    assert parse_invalid_frame("a#b#3") == ("a#b", 3)
    for bad in ("", "hr", "#3", "hr#", "hr#-1", "hr#x"):
        assert parse_invalid_frame(bad) is None, bad


async def test_reconnecting_to_nobody_keeps_one_clock_task_at_most(tmp_path) -> None:
    """Each failed attempt used to leave its clock-sync task looping on its closed channel."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    spool = Spool(tmp_path / "spool")
    spool.append("hr", frame(1).SerializeToString())
    streamer = Streamer(
        lambda: grpc.aio.insecure_channel(f"127.0.0.1:{port}"),
        spool,
        ClockEstimate(),
        "dev-1",
        backoff_cap_s=0.2,
    )
    task = asyncio.create_task(streamer.run())

    def clock_tasks() -> int:
        return sum(1 for t in asyncio.all_tasks() if "_sync_clock" in repr(t.get_coro()) and not t.done())

    most = 0
    for _ in range(30):
        await asyncio.sleep(0.05)
        most = max(most, clock_tasks())
    streamer.stop()
    await task
    spool.close()
    await asyncio.sleep(0)
    assert streamer.stats.reconnects >= 2
    assert most <= 1 and clock_tasks() == 0
