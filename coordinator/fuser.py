"""Fusion behind one interface: the frames a replica fuses go in, fused emotions leave for the fused stream.

Two implementations, chosen once when the coordinator is assembled (coordinator.assembly): LocalFuser
fuses every frame its process stores; SharedFuser (coordinator.sharing) fuses the subjects whose shard
lease its replica holds, with several replicas on one Redis. Both leave through a FusionLoop: one loop
fusing the windows whose grace ran out, one outbox published in order and retried while the store is
away. The services never know which fuser they have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from coordinator.fusion_engine import TICK_S, FusionEngine, fuse_closed
from coordinator.hub import Hub, Published
from coordinator.measures import Measures
from coordinator.store import Store, StoreError
from coordinator.validation import BatchColumns
from mmer.v1 import fusion_pb2, ingest_pb2

log = logging.getLogger("mmer.coordinator.fusion")
PUBLISH_BATCH = 500  # fused emotions per append
OUTBOX_LIMIT = 100_000  # fused emotions kept while the store is away; the oldest go first
STOP_S = 2.0  # how long stop() waits for the loops' last round
RETRY_S = 0.1

StoredFrame = tuple[ingest_pb2.ScoreFrame, int]  # a stored frame and its coordinator receive time
EngineFactory = Callable[[], FusionEngine]
# appends emotions to the fused stream, setting their positions; returns those appended (in order), leaving
# out those already fused (by another replica); raises StoreError when the store is away (retried)
Append = Callable[[list[fusion_pb2.FusedEmotion]], Awaitable[list[fusion_pb2.FusedEmotion]]]


class Fuser(Protocol):
    """What the coordinator's ingest needs of fusion, whoever does it."""

    async def start(self) -> None:
        """Start fusing (and, shared, take a fair share of the subjects)."""
        ...

    async def stop(self) -> None:
        """Publish what is fused, stop, and give back what this replica holds."""
        ...

    def add(self, cols: BatchColumns, rows: Sequence[int]) -> None:
        """New frames this replica fuses: `rows` of a validated batch (its columns); never waits."""
        ...

    def closed(self) -> Counter[str]:
        """Windows fused so far: "complete" (all inputs in) or when their "grace" ran out."""
        ...


class FusionLoop:
    """The one way out of fusion, for either fuser: fuses windows whose grace ran out (at most TICK_S late),
    stamps publish times, appends in order (retried while the store is away), and records what left. It
    also forgets idle subjects, then calls `forgot` (a fuser's own per-subject state follows the engines')."""

    def __init__(
        self,
        engines: Callable[[], Iterable[FusionEngine]],
        append: Append,
        measures: Measures,
        forget_every_s: float,
        forgot: Callable[[], None] | None = None,
    ) -> None:
        self.engines = engines
        self.append = append
        self.measures = measures
        self.forget_every_s = forget_every_s  # how often to look for idle subjects (FusionEngine.forget_idle)
        self.forgot = forgot
        self._outbox: list[fusion_pb2.FusedEmotion] = []
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._store_away_since: float | None = None  # monotonic time of the first refused try, while refused

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._tick_loop()), asyncio.create_task(self._publish_loop())]

    async def stop(self) -> None:
        """Publish what the outbox holds (while the store answers), then end both loops."""
        self._stopping.set()
        self._ready.set()
        self._wake.set()
        done, pending = await asyncio.wait(self._tasks, timeout=STOP_S) if self._tasks else (set(), set())
        for t in pending:
            t.cancel()
        for t in done:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def take(self, emotions: list[fusion_pb2.FusedEmotion]) -> None:
        """Fused emotions to publish, in the order given; and a nudge to the tick loop (new windows)."""
        if emotions:
            self._outbox += emotions
            self._ready.set()
        self._wake.set()

    async def _tick_loop(self) -> None:
        forget_at = time.monotonic() + self.forget_every_s
        while not self._stopping.is_set():
            now = time.time_ns()
            if time.monotonic() >= forget_at:
                forget_at = time.monotonic() + self.forget_every_s
                forgotten = sum(len(e.forget_idle(now)) for e in self.engines())
                if forgotten:
                    self.measures.counters["subjects_forgotten"] += forgotten
                    if self.forgot is not None:
                        self.forgot()
            due = [(d, e) for e in self.engines() if (d := e.next_deadline()) is not None]
            deadline = min(d for d, _ in due) if due else None
            if deadline is None:  # nothing waits: sleep until a frame arrives
                self._wake.clear()
                await self._wake.wait()
            elif deadline <= now:
                self.take(fuse_closed([w for d, engine in due if d <= now for w in engine.close_due(now)]))
            else:
                await asyncio.sleep(min((deadline - now) / 1e9, TICK_S))

    async def _publish_loop(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._outbox:
                batch, self._outbox = self._outbox[:PUBLISH_BATCH], self._outbox[PUBLISH_BATCH:]
                try:
                    await self._publish(batch)
                except StoreError as exc:
                    if self._store_away_since is None:  # once per outage, not at every retry
                        self._store_away_since = time.monotonic()
                        log.warning("publishing fused emotions: %s; retrying every %.1f s", exc, RETRY_S)
                    self._outbox[:0] = batch
                    if len(self._outbox) > OUTBOX_LIMIT:
                        dropped = len(self._outbox) - OUTBOX_LIMIT
                        del self._outbox[:dropped]
                        self.measures.counters["fused_dropped"] += dropped
                    if self._stopping.is_set():
                        return
                    await asyncio.sleep(RETRY_S)
                except Exception:  # a bug, not an outage: retrying would repeat it; keep fusing the rest
                    log.exception("publishing %d fused emotions failed; dropped", len(batch))
                    self.measures.counters["fused_dropped"] += len(batch)
                else:
                    if self._store_away_since is not None:
                        away_s = time.monotonic() - self._store_away_since
                        self._store_away_since = None
                        log.warning("publishing fused emotions again after %.1f s", away_s)
            if self._stopping.is_set():
                return

    async def _publish(self, emotions: list[fusion_pb2.FusedEmotion]) -> None:
        now = time.time_ns()
        fused_at = {}
        for emotion in emotions:
            lat = emotion.latency
            # the engine stamps its fusion time in published_ns; a try the store refused moved it on by the
            # publish_ms it set, so a retried emotion still counts from its fusion
            fused_ns = emotion.published_ns - round(lat.publish_ms * 1e6)
            fused_at[id(emotion)] = fused_ns
            emotion.published_ns = now
            lat.publish_ms = max(now - fused_ns, 0) / 1e6
            lat.total_ms = (
                lat.queue_ms
                + lat.inference_ms
                + lat.spool_ms
                + lat.network_ms
                + lat.wait_ms
                + lat.fuse_ms
                + lat.publish_ms
            )
        published = await self.append(emotions)
        m = self.measures
        if len(published) < len(emotions):
            m.counters["fused_already"] += len(emotions) - len(published)
        m.counters["fused_emotions"] += len(published)
        for emotion in published:
            lat = emotion.latency
            m.traces.published(emotion, fused_at.get(id(emotion), emotion.published_ns))
            m.hops.emotion(lat.wait_ms, lat.fuse_ms, lat.publish_ms, lat.total_ms)


class LocalFuser:
    """Fuses every frame this process stores, in one engine; emotions go to the store and this process's
    subscribers. The fuser of a coordinator whose store no other replica shares."""

    def __init__(
        self, new_engine: EngineFactory, store: Store, hub: Hub, measures: Measures, forget_every_s: float
    ) -> None:
        self.engine = new_engine()
        self.store = store
        self.hub = hub
        self.loop = FusionLoop(lambda: (self.engine,), self.append, measures, forget_every_s)

    async def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    def add(self, cols: BatchColumns, rows: Sequence[int]) -> None:
        if rows:
            self.loop.take(self.engine.add_batch(cols, rows))

    def closed(self) -> Counter[str]:
        return Counter(self.engine.closed)

    async def append(self, emotions: list[fusion_pb2.FusedEmotion]) -> list[fusion_pb2.FusedEmotion]:
        appended = await self.store.append_fused(emotions)
        self.hub.publish(Published.of(appended))
        return appended
