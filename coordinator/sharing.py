"""Several coordinator replicas on one Redis: each subject fused by exactly one replica at a time.

Subjects hash into shards. A replica owns a shard while it holds the shard's
lease key (SET NX PX, renewed; it expires when the holder dies). Ingest (on any
replica) appends each new frame to its shard's history stream atomically with
the dedup mark, then acks; the same script tells whether the caller holds the
lease. The owner fuses such frames at once (Fuser.add); frames stored
by any other replica also go to the shard's inbox stream, which the owner reads
through the consumer group "fusers". A replica taking over rebuilds the fusion
state from the history's recent past and then reads the inbox (a frame met twice
is fed once, by its sequence number), and fuses each window once: a per-subject
mark (last fused window end) is checked and advanced in the same script that
appends the fused emotion. Fused emotions leave through one outbox, so each
subject's windows reach the fused stream in order. Every replica tails the
fused stream to feed its own subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from redis.exceptions import ResponseError

from coordinator.fuser import EngineFactory, FusionLoop, StoredFrame
from coordinator.fusion_engine import Closed, FusionEngine, fuse_closed
from coordinator.hub import Hub, Published
from coordinator.measures import Measures
from coordinator.redis_store import LuaScript, RedisStore, redis_call, store_errors, stream_entry_frames
from coordinator.store import StoreError
from coordinator.validation import BatchColumns, read_columns
from mmer.v1 import fusion_pb2

log = logging.getLogger("mmer.coordinator.sharing")
SHARDS = 16
GROUP = "fusers"
STOP_S = 2.0  # how long stop() waits for the loops' last blocking reads

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedFuser:
    """This replica's part in sharing fusion work over one Redis: a Fuser (coordinator.fuser)."""

    def __init__(
        self,
        new_engine: EngineFactory,
        store: RedisStore,
        hub: Hub,
        measures: Measures,
        forget_every_s: float,
        lease_s: float = 3.0,
        horizon_s: float = 10.0,
    ) -> None:
        self.new_engine = new_engine
        self.store = store
        self.hub = hub
        self.r = store.client
        self.me = store.replica  # the id the store's script compares with a shard's lease holder
        self.lease_ms = int(lease_s * 1000)
        self.horizon_ms = int(horizon_s * 1000)
        self.engines: dict[int, FusionEngine] = {}  # the shards this replica owns, rebuilt and fusing
        self.loop = FusionLoop(
            self.engines.values, store.append_fused, measures, forget_every_s, self._forget_marks
        )
        # per shard and subject: the last seq fed per (device, modality); a subject's marks go when its engine
        # forgets it (the fusion loop calls _forget_marks then)
        self._fed: dict[int, dict[str, dict[tuple[str, str], int]]] = {}
        self._rebuilding: dict[int, list[StoredFrame]] = {}  # frames held meanwhile
        self._renew = LuaScript(self.r, RENEW)
        self._release = LuaScript(self.r, RELEASE)
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self.cluster = store.cluster  # on a Redis Cluster each shard's inbox is read by its own call (slot)
        self._readers: dict[int, asyncio.Task] = {}  # the per-shard inbox readers on a cluster

    @redis_call
    async def start(self) -> None:
        # Tail from the stream's current end, read before this replica fuses anything: with "$" an emotion
        # appended before the first XREAD reached Redis (a takeover's backlog) never reached subscribers.
        newest = await self.r.xrevrange(self.store.stream, count=1)
        tail_from = newest[0][0].decode() if newest else "0-0"
        self.cluster = await self.store.enforces_slots()
        self.loop.start()
        self._tasks = [
            asyncio.create_task(self._tail_loop(tail_from)),
            asyncio.create_task(self._lease_loop()),
        ]
        if not self.cluster:  # one call reads every owned shard's inbox
            self._tasks.append(asyncio.create_task(self._inbox_loop(self.owned)))

    async def stop(self) -> None:
        """Let the loops finish their current (short, blocking) read and the outbox drain, then give the
        shards back.

        The loops are asked to stop rather than cancelled: a cancelled blocking XREAD left redis-py's
        connection waiting for a reply that never came, and the process hung at shutdown."""
        self._stopping.set()
        await self.loop.stop()
        with contextlib.suppress(StoreError), store_errors():
            await self.r.zrem(f"{self.store.p}:{{ctl}}:replicas", self.me)
        done, pending = await asyncio.wait(self._tasks, timeout=STOP_S) if self._tasks else (set(), set())
        for t in pending:
            t.cancel()
        for t in done:
            with contextlib.suppress(asyncio.CancelledError, StoreError), store_errors():
                await t
        shards = list(self.engines)
        self.engines.clear()
        with contextlib.suppress(StoreError), store_errors():
            await self._give_back(shards)

    def owned(self) -> list[int]:
        return sorted(self.engines)

    def closed(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for engine in self.engines.values():
            total.update(engine.closed)
        return total

    def add(self, cols: BatchColumns, rows: Sequence[int]) -> None:
        """Frames stored by this replica while it held their shard's lease."""
        subjects = cols.subject_ids
        shard_of = {s: self.store.shard_of(s) for s in set(subjects)}
        by_shard: dict[int, list[int]] = {}
        for i in rows:
            by_shard.setdefault(shard_of[subjects[i]], []).append(i)
        self.loop.take(
            fuse_closed([w for shard, group in by_shard.items() for w in self._feed(shard, cols, group)])
        )

    def _feed(self, shard: int, cols: BatchColumns, rows: list[int]) -> list[Closed]:
        """Rows of a batch of a shard's frames into its engine; returns the windows they close, to fuse.
        Called for the frames this replica stored as the shard's owner, and for the inbox; a shard being
        taken over holds them until its rebuild is done."""
        engine = self.engines.get(shard)
        if engine is None:
            held = self._rebuilding.get(shard)
            if held is not None:
                held.extend((cols.frames[i], cols.times[i][4]) for i in rows)
            return []  # not ours (any more): the next owner rebuilds from the history
        fed, subjects, devices, modalities, seqs = (
            self._fed[shard],
            cols.subject_ids,
            cols.device_ids,
            cols.modalities,
            cols.seqs,
        )
        fresh = []
        for i in rows:
            marks, key = fed.setdefault(subjects[i], {}), (devices[i], modalities[i])
            if seqs[i] > marks.get(key, 0):  # else fed already: the rebuilt history and the inbox overlap
                marks[key] = seqs[i]
                fresh.append(i)
        return engine.close_batch(cols, fresh) if fresh else []

    def _feed_stored(self, shard: int, frames: list[StoredFrame]) -> None:
        """Stored frames (from the shard's history or inbox), each with its receive time, into _feed."""
        if frames:
            cols = read_columns([f for f, _ in frames], [r for _, r in frames])
            self.loop.take(fuse_closed(self._feed(shard, cols, list(range(len(frames))))))

    def _forget_marks(self) -> None:
        """Drop the seq marks of subjects their shard's engine forgot (FusionEngine.forget_idle): a replica
        that runs for months meets many devices."""
        for shard, engine in self.engines.items():
            fed = self._fed[shard]
            for subject in [s for s in fed if s not in engine.subjects]:
                del fed[subject]

    async def _lease_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._tick_leases()
            except StoreError as exc:
                log.warning("lease renewal failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease_ms / 3000):
                    await self._stopping.wait()

    async def _fair_share(self) -> int:
        """Shards per live replica (replicas announce themselves in a sorted set scored by expiry)."""
        key = f"{self.store.p}:{{ctl}}:replicas"
        now_ms = int(time.time() * 1000)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {self.me: now_ms + self.lease_ms})
            pipe.zremrangebyscore(key, "-inf", now_ms)
            pipe.zcard(key)
            live = (await pipe.execute())[-1]
        return -(-self.store.shards // max(live, 1))

    @redis_call
    async def _tick_leases(self) -> None:
        """Renew the leases held (all in one round trip: one call per shard, each awaited in turn behind a
        busy ingest, let leases lapse), hand shards over down to a fair share, take shards up to it."""
        share = await self._fair_share()
        owned = self.owned()
        surplus = owned[: max(len(owned) - share, 0)]  # handed over to a replica with fewer shards
        for shard in surplus:
            self._drop(shard)
        kept = owned[len(surplus) :]

        def fill(pipe) -> None:
            for shard in surplus:
                self._release.queue(pipe, [self.store.shard_key(shard, "owner")], [self.me])
            for shard in kept:
                self._renew.queue(pipe, [self.store.shard_key(shard, "owner")], [self.me, self.lease_ms])

        if owned:
            renewed = (await self._renew.pipelined(fill))[len(surplus) :]
            for shard in surplus:
                log.info("%s released shard %d", self.me, shard)
            for shard, ok in zip(kept, renewed, strict=True):
                if not ok:
                    log.warning("lost shard %d", shard)
                    self._drop(shard)
        free = [s for s in range(self.store.shards) if s not in self.engines]
        while free and len(self.engines) < share:
            tries, free = free[: share - len(self.engines)], free[share - len(self.engines) :]
            for shard in tries:
                self._rebuilding[shard] = []  # before the lease: our frames may be stored as owned at once
            try:
                async with self.r.pipeline(transaction=False) as pipe:
                    for shard in tries:
                        pipe.set(self.store.shard_key(shard, "owner"), self.me, nx=True, px=self.lease_ms)
                    taken = await pipe.execute()
                for shard, ok in zip(tries, taken, strict=True):
                    if ok:
                        await self._take_over(shard)
            finally:
                for shard in tries:
                    self._rebuilding.pop(shard, None)
        if self.engines:
            minid = f"{int(time.time() * 1000) - 3 * self.horizon_ms}"
            async with self.r.pipeline(transaction=False) as pipe:
                for shard in self.owned():
                    for what in ("frames", "inbox"):
                        pipe.xtrim(self.store.shard_key(shard, what), minid=minid, approximate=True)
                await pipe.execute()

    async def _give_back(self, shards: list[int]) -> None:
        """Release the leases of shards this replica no longer fuses, in one round trip."""
        if shards:
            await self._release.pipelined(
                lambda pipe: [
                    self._release.queue(pipe, [self.store.shard_key(s, "owner")], [self.me]) for s in shards
                ]
            )

    def _drop(self, shard: int) -> None:
        """Stop fusing a shard; windows it held open are the next owner's to fuse (it rebuilds them)."""
        self.engines.pop(shard, None)
        self._fed.pop(shard, None)

    async def _take_over(self, shard: int) -> None:
        """Rebuild the shard's fusion state from recent frames and fuse what the last holder left undone;
        on failure give the lease back, so that the shard is taken over again soon."""
        inbox = self.store.shard_key(shard, "inbox")
        try:
            with store_errors():
                with contextlib.suppress(ResponseError):
                    await self.r.xgroup_create(inbox, GROUP, id="0", mkstream=True)
                start = f"{int(time.time() * 1000) - self.horizon_ms}"
                history = await self.r.xrange(self.store.shard_key(shard, "frames"), min=start, max="+")
                cursor = "0-0"
                while True:  # anything a dead holder had claimed: the history covers it
                    cursor, claimed, *_ = await self.r.xautoclaim(
                        inbox, GROUP, self.me, min_idle_time=0, start_id=cursor
                    )
                    if claimed:
                        await self.r.xack(inbox, GROUP, *[c[0] for c in claimed])
                    if cursor in (b"0-0", "0-0"):
                        break
        except StoreError:
            with contextlib.suppress(StoreError), store_errors():
                await self._give_back([shard])
            raise
        frames = [f for _, fields in history for f in stream_entry_frames(fields)]
        frames += self._rebuilding.pop(shard)  # stored since we hold the lease; the history may have them too
        self.engines[shard], self._fed[shard] = self.new_engine(), {}
        self._feed_stored(shard, frames)
        reader = self._readers.get(shard)
        if self.cluster and (reader is None or reader.done()):
            reader = self._readers[shard] = asyncio.create_task(
                self._inbox_loop(lambda: self._still_owned(shard))
            )
            self._tasks = [t for t in self._tasks if not t.done()] + [reader]
        log.info("%s took shard %d", self.me, shard)

    def _still_owned(self, shard: int) -> list[int] | None:
        return [shard] if shard in self.engines else None

    async def _inbox_loop(self, shards: Callable[[], list[int] | None]) -> None:
        """Fuse the frames other replicas stored for the shards `shards()` names (None: stop reading)."""
        while not self._stopping.is_set():
            owned = shards()
            if owned is None:
                return
            if not owned:
                await asyncio.sleep(0.05)
                continue
            streams = {self.store.shard_key(s, "inbox"): ">" for s in owned}
            try:  # NOACK: a successor rebuilds from the history, not from what was pending
                with store_errors():
                    replies = await self.r.xreadgroup(
                        GROUP, self.me, streams, count=500, block=50, noack=True
                    )
            except StoreError as exc:  # group vanished (stream trimmed / flushed) or Redis restarting:
                log.warning("reading the inbox: %s", exc)  # the lease loop retakes shards whose lease lapsed
                await asyncio.sleep(0.1)
                continue
            for stream, entries in replies or []:
                shard = int(stream.decode().split("{s", 1)[1].split("}", 1)[0])
                self._feed_stored(shard, [f for _, fields in entries for f in stream_entry_frames(fields)])

    async def _tail_loop(self, last: str) -> None:
        while not self._stopping.is_set():
            try:
                with store_errors():
                    replies = await self.r.xread({self.store.stream: last}, count=1000, block=200)
            except StoreError as exc:  # Redis restarting: resume after the last emotion fanned out
                log.warning("tailing the fused stream: %s", exc)
                await asyncio.sleep(0.1)
                continue
            for _, entries in replies or []:
                if entries:
                    self.hub.publish(published_entries(entries))
                    last = entries[-1][0]


def published_entries(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> Published:
    """Fused stream entries (id, fields) as Published: the emotion bytes as stored, the subject beside them
    (parsed out of the emotion for entries that do not carry it)."""
    subjects = [
        s.decode()
        if (s := fields.get(b"s")) is not None
        else fusion_pb2.FusedEmotion.FromString(fields[b"e"]).subject_id
        for _, fields in entries
    ]
    return Published.appended(
        [entry_id.decode() for entry_id, _ in entries], subjects, [fields[b"e"] for _, fields in entries]
    )
