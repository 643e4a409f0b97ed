"""Streams spooled frames over Ingest.StreamScores with adaptive batching; reconnects and replays.

A frame goes out alone when nothing is in flight; whatever piles up while a
batch waits for its ack goes in the next one (up to 1024 frames), so light
load has low latency and heavy load high throughput. With a batch interval,
a batch that is not full waits until that long after the previous one: a
device streaming several modalities sends a few batches a second, each one
spool fsync and one gRPC write, instead of one per frame. On any stream error the
client backs off exponentially with full jitter, reconnects and resends every
unacked frame from the spool (the coordinator de-duplicates by seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from opentelemetry import propagate

from edge_node import telemetry
from edge_node.clock import ClockEstimate
from edge_node.spool import Spool
from mmer.v1 import clock_pb2, clock_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from mmer_core.wire import INVALID_FRAME_KEY, parse_invalid_frame

log = logging.getLogger(__name__)

MAX_BATCH = 1024


@dataclass
class StreamStats:
    """Counters only: a node streams for months, so nothing here may grow with what it sent."""

    sent: int = 0
    acked: int = 0
    batches: int = 0
    reconnects: int = 0
    refused: int = 0


def auth_metadata(token: str) -> list[tuple[str, str]]:
    """Bearer token plus the current trace context, as gRPC metadata."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    md = list(carrier.items())
    if token:
        md.append(("authorization", f"Bearer {token}"))
    return md


def make_channel(
    target: str, tls_ca: bytes | None = None, cert: bytes | None = None, key: bytes | None = None
):
    """An aio channel, TLS when a CA is given (mutual TLS with cert and key)."""
    opts = [("grpc.max_receive_message_length", 4 << 20), ("grpc.keepalive_time_ms", 20_000)]
    # grpc's own reconnect backoff (1 s x1.6 up to 120 s, shared by every channel of the process) would
    # otherwise outlast the streamer's: after a minute-long outage the node would wait up to 2 minutes.
    opts += [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 2000)]
    if tls_ca is None:
        return grpc.aio.insecure_channel(target, options=opts)
    creds = grpc.ssl_channel_credentials(root_certificates=tls_ca, private_key=key, certificate_chain=cert)
    return grpc.aio.secure_channel(target, creds, options=opts)


class Streamer:
    """Owns the coordinator connection: score stream, clock sync."""

    def __init__(
        self,
        channel_factory: Callable[[], grpc.aio.Channel],
        spool: Spool,
        clock: ClockEstimate,
        device_id: str,
        token: str = "",
        status: Callable[[], ingest_pb2.EdgeStatus] | None = None,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 2.0,  # service must be back within 5 s of a coordinator restart
        max_in_flight: int = 1,
        clock_interval_s: float = 30.0,
        batch_interval_s: float = 0.0,
    ) -> None:
        self._factory = channel_factory
        self.spool = spool
        self.clock = clock
        self.device_id = device_id
        self.token = token
        self.status_fn = status
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_in_flight = max_in_flight
        self.clock_interval_s = clock_interval_s
        if not 0.0 <= batch_interval_s <= 10.0:
            raise ValueError(f"batch interval must be within 0..10 s, got {batch_interval_s}")
        self.batch_interval_s = batch_interval_s
        self.stats = StreamStats()
        self.connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._wake_pending = False  # a wake-up is scheduled on the loop and has not run yet
        self._pacing = False  # the stream waits out the batch interval, then reads the spool anyway
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()

    def wake(self) -> None:
        """Thread-safe: new frames are in the spool. Each call_soon_threadsafe wakes the loop through a pipe,
        so none is made while the stream waits out the batch interval (it reads the spool when that ends) and
        one at a time otherwise (frames spooled before it runs are seen by it)."""
        if self._loop is not None and not self._pacing and not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._wake_pending = False  # first: a frame spooled from now on schedules a wake-up of its own
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Stream until stop(); reconnect with backoff and jitter on every failure."""
        self._loop = asyncio.get_running_loop()
        failures = 0
        while not self._stop.is_set():
            channel = self._factory()
            clock_task = asyncio.create_task(self._sync_clock(channel))
            try:
                progressed = await self._stream(channel)
                if self._stop.is_set():
                    break
                failures = 0 if progressed else failures + 1
            # InvalidStateError: a write raced the call's end (the server went away while we awaited)
            except (grpc.aio.AioRpcError, ConnectionError, asyncio.InvalidStateError) as exc:
                detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                if isinstance(exc, grpc.aio.AioRpcError) and self._set_aside_refused(exc):
                    log.error("coordinator refused a frame, set aside (not resent): %s", detail)
                else:
                    log.warning("stream to coordinator failed: %s", detail)
                    failures += 1
            finally:
                clock_task.cancel()  # before the channel closes under it, whichever way the stream ended
                self.connected.clear()
                await channel.close(grace=None)
            if self._stop.is_set():
                break
            self.stats.reconnects += 1
            telemetry.reconnects.add(1)
            delay = random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** min(failures, 16)))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()

    def _set_aside_refused(self, exc: grpc.aio.AioRpcError) -> bool:
        """An INVALID_ARGUMENT naming one frame: set that frame aside in the spool; True if one was."""
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
            return False
        for key, value in exc.trailing_metadata() or ():
            named = parse_invalid_frame(value) if key == INVALID_FRAME_KEY else None
            if named is not None and self.spool.refuse(*named):
                self.stats.refused += 1
                return True
        return False

    async def sync_clock_once(self, channel: grpc.aio.Channel, exchanges: int = 4) -> None:
        stub = clock_pb2_grpc.ClockStub(channel)
        for _ in range(exchanges):
            t0 = time.time_ns()
            resp = await stub.Sync(
                clock_pb2.SyncRequest(t0_device_ns=t0, device_id=self.device_id),
                metadata=auth_metadata(self.token),
                timeout=2.0,
            )
            self.clock.add_response(resp, time.time_ns())

    async def _sync_clock(self, channel: grpc.aio.Channel) -> None:
        while True:
            try:
                await self.sync_clock_once(channel)
            except grpc.aio.AioRpcError as exc:
                log.warning("clock sync failed: %s", exc.details())
            await asyncio.sleep(self.clock_interval_s)

    async def _stream(self, channel: grpc.aio.Channel) -> bool:
        stub = ingest_pb2_grpc.IngestStub(channel)
        with telemetry.tracer.start_as_current_span("edge.stream_open"):
            # the stream's metadata carries this span's context, so the coordinator's spans join the trace
            call = stub.StreamScores(metadata=auth_metadata(self.token))
        sent = self.spool.acked()
        in_flight: dict[int, int] = {}
        batch_id = 0
        progressed = False
        acked_event = asyncio.Event()
        last_batch = -float("inf")  # monotonic time the previous batch went out

        async def read_acks() -> None:
            nonlocal progressed
            async for ack in call:
                for a in ack.acks:
                    n = self.spool.ack(a.modality, a.acked_seq)
                    self.stats.acked += n
                    telemetry.frames_acked.add(n, {"modality": a.modality})
                for b in [b for b in in_flight if b <= ack.batch_id]:
                    del in_flight[b]
                progressed = True
                acked_event.set()

        reader = asyncio.create_task(read_acks())
        # a failed connect fails the reader too: its error is the one wait_for_connection raises, so mark
        # it retrieved (asyncio would log a traceback per reconnect attempt) and cancel the call below
        reader.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            await call.wait_for_connection()
            self.connected.set()
            while not self._stop.is_set():
                if reader.done():
                    reader.result()
                    raise ConnectionError("coordinator closed the stream")
                rows = self.spool.unsent(sent, MAX_BATCH) if len(in_flight) < self.max_in_flight else []
                if not rows:
                    self._wake.clear()
                    acked_event.clear()
                    waits = [asyncio.ensure_future(e.wait()) for e in (self._wake, acked_event)]
                    await asyncio.wait([*waits, reader], return_when=asyncio.FIRST_COMPLETED)
                    for w in waits:
                        w.cancel()
                    continue
                wait = last_batch + self.batch_interval_s - time.monotonic()
                if len(rows) < MAX_BATCH and wait > 0:
                    # frames spooled meanwhile join this batch; a stop or a dead stream is seen after it
                    self._pacing = True
                    try:
                        await asyncio.wait([reader], timeout=wait)
                    finally:
                        self._pacing = False  # before the spool is read again: no frame is missed
                    continue
                if self.spool.uncommitted:
                    # the frames must be on disk before the coordinator can see their seqs (spool `batch` sync)
                    await asyncio.to_thread(self.spool.commit)
                    if call.done():
                        raise ConnectionError("the stream ended while the spool was syncing")
                batch_id += 1
                with telemetry.tracer.start_as_current_span("edge.send_batch") as span:
                    span.set_attribute("mmer.frames", len(rows))
                    batch = ingest_pb2.ScoreBatch(batch_id=batch_id)
                    send_ns = self.clock.now_ns()
                    for m, seq, payload in rows:
                        f = batch.frames.add()
                        f.MergeFromString(payload)
                        f.send_ns = send_ns
                        if f.traceparent:  # the window's trace was sampled: continue it at the coordinator
                            f.traceparent = telemetry.trace_send(f)
                        sent[m] = max(sent.get(m, 0), seq)
                    if self.status_fn is not None:
                        batch.status.CopyFrom(self.status_fn())
                    in_flight[batch_id] = len(rows)
                    last_batch = time.monotonic()
                    await call.write(batch)
                self.stats.sent += len(rows)
                self.stats.batches += 1
                telemetry.frames_sent.add(len(rows))
            await call.done_writing()
            return progressed
        finally:
            reader.cancel()
            call.cancel()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (everything acked) or timeout."""
        deadline = time.monotonic() + timeout_s
        while self.spool.depth and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.spool.depth == 0
