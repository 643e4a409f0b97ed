"""Several coordinator replicas on one Redis: each subject fused by exactly one replica at a time.

Subjects hash into shards. Ingest (on any replica) appends each new frame to
its shard's Redis Stream atomically with the dedup mark, then acks. A replica
owns a shard while it holds the shard's lease key (SET NX PX, renewed; it
expires when the holder dies) and reads the stream through the consumer group
"fusers". A replica taking over rebuilds the fusion state from the stream's
recent history, claims what the dead holder left pending (XAUTOCLAIM), and
fuses each window once: a per-subject mark (last fused window end) is checked
and advanced in the same script that appends the fused emotion. Every replica
tails the fused stream to feed its own subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid

from redis.exceptions import RedisError, ResponseError

from coordinator.fusion_engine import FusionEngine
from coordinator.redis_store import LuaScript, RedisStore, stream_entry_frames
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
# KEYS: mark hash, fused stream, latest hash. ARGV: subject, window end, emotion bytes, maxlen.
# The latest-state copy gets its stream position appended as FusedEmotion.position (field 2, a string:
# tag 0x12, one length byte as ids are shorter than 128 bytes); a later field wins when parsed.
APPEND_ONCE = """
local mark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= mark then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3] .. string.char(18, #id) .. id)
return id
"""


class SharedFusion:
    """This replica's part in sharing fusion work over one Redis."""

    def __init__(self, app, store: RedisStore, lease_s: float = 3.0, horizon_s: float = 10.0) -> None:
        self.app = app
        self.store = store
        self.r = store.client
        self.me = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ms = int(lease_s * 1000)
        self.horizon_ms = int(horizon_s * 1000)
        self.engines: dict[int, FusionEngine] = {}
        self._renew = self.r.register_script(RENEW)
        self._release = self.r.register_script(RELEASE)
        self._append = LuaScript(self.r, APPEND_ONCE)
        self._tasks: list[asyncio.Task] = []
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        # Tail from the stream's current end, read before this replica fuses anything: with "$" an emotion
        # appended before the first XREAD reached Redis (a takeover's backlog) never reached subscribers.
        newest = await self.r.xrevrange(self.store.stream, count=1)
        tail_from = newest[0][0].decode() if newest else "0-0"
        self._tasks = [
            asyncio.create_task(self._tail_loop(tail_from)),
            asyncio.create_task(self._lease_loop()),
            asyncio.create_task(self._fuse_loop()),
        ]

    async def stop(self) -> None:
        """Let the loops finish their current (short, blocking) read, then give the shards back.

        The loops are asked to stop rather than cancelled: a cancelled blocking XREAD left redis-py's
        connection waiting for a reply that never came, and the process hung at shutdown."""
        self._stopping.set()
        with contextlib.suppress(RedisError):
            await self.r.zrem(f"{self.store.p}:{{ctl}}:replicas", self.me)
        done, pending = await asyncio.wait(self._tasks, timeout=STOP_S)
        for t in pending:
            t.cancel()
        for t in done:
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await t
        for shard in list(self.engines):
            with contextlib.suppress(RedisError):
                await self._release(keys=[self.store.shard_key(shard, "owner")], args=[self.me])

    def owned(self) -> list[int]:
        return sorted(self.engines)

    async def append_once(self, emotion: fusion_pb2.FusedEmotion) -> str | None:
        """Append unless this subject's window was already fused (by us or a dead predecessor)."""
        return (await self.append_many([emotion]))[0]

    async def append_many(self, emotions: list[fusion_pb2.FusedEmotion]) -> list[str | None]:
        """append_once for many emotions in one pipeline; the position of each, None for those refused."""

        def fill(pipe) -> None:
            for emotion in emotions:
                keys = [self.store.fused_mark_key, self.store.stream, self.store.latest_key]
                args = [
                    emotion.subject_id,
                    emotion.window_end_ns,
                    emotion.SerializeToString(),
                    self.store.maxlen,
                ]
                self._append.queue(pipe, keys, args)

        results = await self._append.pipelined(fill)
        return [r.decode() if r else None for r in results]

    def _engine(self) -> FusionEngine:
        return self.app.new_engine()

    async def _lease_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._tick_leases()
            except RedisError as exc:
                log.warning("lease renewal failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.lease_ms / 3000)

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

    async def _tick_leases(self) -> None:
        share = await self._fair_share()
        for shard in range(self.store.shards):
            key = self.store.shard_key(shard, "owner")
            if shard in self.engines:
                if len(self.engines) > share:  # hand over to a replica with fewer shards
                    async with self._lock:
                        self.engines.pop(shard, None)
                        await self._release(keys=[key], args=[self.me])
                    log.info("%s released shard %d", self.me, shard)
                elif not await self._renew(keys=[key], args=[self.me, self.lease_ms]):
                    log.warning("lost shard %d", shard)
                    self.engines.pop(shard, None)
                continue
            if len(self.engines) < share and await self.r.set(key, self.me, nx=True, px=self.lease_ms):
                async with self._lock:
                    await self._take_over(shard)
        now_ms = int(time.time() * 1000)
        for shard in self.owned():
            await self.r.xtrim(
                self.store.shard_key(shard, "frames"),
                minid=f"{now_ms - 3 * self.horizon_ms}",
                approximate=True,
            )

    async def _take_over(self, shard: int) -> None:
        """Rebuild the shard's fusion state from recent frames and fuse what the last holder left undone."""
        stream = self.store.shard_key(shard, "frames")
        with contextlib.suppress(ResponseError):
            await self.r.xgroup_create(stream, GROUP, id="0", mkstream=True)
        groups = await self.r.xinfo_groups(stream)
        delivered = next(g["last-delivered-id"] for g in groups if g["name"] in (GROUP, GROUP.encode()))
        delivered = delivered.decode() if isinstance(delivered, bytes) else delivered
        engine = self._engine()
        self.engines[shard] = engine
        start = f"{int(time.time() * 1000) - self.horizon_ms}"
        if delivered != "0-0":
            for _, fields in await self.r.xrange(stream, min=start, max=delivered):
                await self.app.publish_many(self._feed(engine, fields))
        cursor = "0-0"
        while True:  # what the dead holder had read but not finished: covered by the rebuild above
            cursor, claimed, *_ = await self.r.xautoclaim(
                stream, GROUP, self.me, min_idle_time=0, start_id=cursor
            )
            if claimed:
                await self.r.xack(stream, GROUP, *[c[0] for c in claimed])
            if cursor in (b"0-0", "0-0"):
                break
        log.info("%s took shard %d", self.me, shard)

    @staticmethod
    def _feed(engine: FusionEngine, fields: dict) -> list[fusion_pb2.FusedEmotion]:
        """One stream entry (new frames of the batches one pipeline stored) into the engine; the windows it
        closes."""
        return [e for f, receive_ns in stream_entry_frames(fields) for e in engine.add(f, receive_ns)]

    async def _fuse_loop(self) -> None:
        while not self._stopping.is_set():
            owned = self.owned()
            if not owned:
                await asyncio.sleep(0.05)
                continue
            streams = {self.store.shard_key(s, "frames"): ">" for s in owned}
            deadlines = [d for e in self.engines.values() if (d := e.next_deadline()) is not None]
            wait_ms = int(min(deadlines, default=time.time_ns() + 50_000_000) - time.time_ns()) // 1_000_000
            try:  # NOACK: a successor rebuilds from the stream itself, not from what was pending
                replies = await self.r.xreadgroup(
                    GROUP, self.me, streams, count=500, block=min(max(wait_ms, 1), 50), noack=True
                )
                async with self._lock:
                    emotions = []
                    for stream, entries in replies or []:
                        name = stream.decode()
                        shard = int(name.split("{s", 1)[1].split("}", 1)[0])
                        engine = self.engines.get(shard)
                        if engine is None:
                            continue  # lost the lease meanwhile; the next holder re-reads these
                        for _, fields in entries:
                            emotions += self._feed(engine, fields)
                    now = time.time_ns()
                    for engine in self.engines.values():  # windows whose grace ran out
                        emotions += engine.tick(now)
                    await self.app.publish_many(emotions)
            except RedisError as exc:  # group vanished (stream trimmed / flushed) or Redis restarting:
                log.warning("fusing: %s", exc)  # the lease loop retakes shards whose lease lapsed
                await asyncio.sleep(0.1)

    async def _tail_loop(self, last: str) -> None:
        while not self._stopping.is_set():
            try:
                replies = await self.r.xread({self.store.stream: last}, count=1000, block=200)
            except RedisError as exc:  # Redis restarting: resume after the last emotion fanned out
                log.warning("tailing the fused stream: %s", exc)
                await asyncio.sleep(0.1)
                continue
            for _, entries in replies or []:
                for entry_id, fields in entries:
                    emotion = fusion_pb2.FusedEmotion.FromString(fields[b"e"])
                    emotion.position = entry_id.decode()
                    self.app.hub.publish(emotion)
                    last = entry_id
