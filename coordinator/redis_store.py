"""The deployment store: Redis, shared by every coordinator replica.

Layout (all keys under one prefix; the hash tags keep what one call touches in
one Redis Cluster slot): dedup high-water marks per device (or per subject
shard) in a hash; per shard, the frame history and inbox streams and the lease
key (see sharing.py); the fused stream in a Redis Stream capped by MAXLEN, the
newest emotion per subject in a hash, bundles and rollout state in hashes.
A batch of frames costs one script call on a single server (one per hash tag,
all in one pipeline, on a Redis Cluster): the script checks and advances the
marks atomically, so two replicas never both accept the same frame, and returns
the marks the Ack reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import ParamSpec, TypeVar

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from coordinator.encoded import field_1
from coordinator.store import StoredBatch, StoreError
from coordinator.validation import BatchColumns, read_columns
from mmer.v1 import fusion_pb2, ingest_pb2, manifest_pb2

log = logging.getLogger("mmer.coordinator.redis")
POLL_S = 0.2  # longest wait of one pub/sub poll (bounds how long stopping takes)
MAX_CACHED_SUBJECTS = 100_000
CLUSTER_SCHEME = "redis+cluster://"  # any node of a Redis Cluster; the client finds the others


P = ParamSpec("P")
T = TypeVar("T")


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """The one place a Redis failure becomes StoreError: callers (and the RPC layer, which answers it with
    UNAVAILABLE) see one exception whatever redis-py raised, a reply error or a lost connection."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreError(f"redis: {exc}") from exc


def redis_call(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """`method` with its Redis failures raised as StoreError (see store_errors)."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        with store_errors():
            return await method(*args, **kwargs)

    return call


def connect(url: str) -> redis.Redis | RedisCluster:
    """A client for redis://, rediss:// or unix:// (one server), or redis+cluster:// (a Redis Cluster)."""
    if url.startswith(CLUSTER_SCHEME):
        return RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME) :])
    return redis.Redis.from_url(url)


# Frames in groups, one group per hash tag (a subject shard, or a device), the groups' frames one after the
# other. KEYS, per group: its high-water hash, and in shared mode its shard's frame history, inbox and lease
# key. ARGV: the frames' receive times, comma-separated; their fields (device/modality, or modality),
# space-separated (ids never hold spaces); their seqs, comma-separated; in shared mode the lengths of their
# encoded records, comma-separated, the records end to end, and the calling replica's id; the number of
# frames of each group, comma-separated. Seven arguments whatever the batch size: packing one argument per
# frame value cost more than the script, and a script call per group cost more than the frames' own work.
# Returns "1"/"0" (new or not) per frame, the mark after each frame (comma-separated), and per group "1"
# when the caller owns its shard. Shared mode: a group's new frames go to its history as one entry (a
# ScoreBatch, and their receive times comma-separated: see stream_entry_frames), atomically with their
# marks; a caller holding the shard's lease fuses them itself, anyone else's frames go to the inbox too,
# which the owner reads. A group's marks are read in one HMGET and written in one HSET. Marks are written
# back as the strings received (Lua numbers would print large seqs in exponent form). On a Redis Cluster
# each call holds one group (its keys share one slot).
STORE_BATCH = """
local seqs, lens, received, sizes = {}, {}, {}, {}
for v in string.gmatch(ARGV[1], '[^,]+') do received[#received + 1] = v end
for v in string.gmatch(ARGV[3], '[^,]+') do seqs[#seqs + 1] = v end
for v in string.gmatch(ARGV[4], '[^,]+') do lens[#lens + 1] = tonumber(v) end
for v in string.gmatch(ARGV[7], '[^,]+') do sizes[#sizes + 1] = tonumber(v) end
local per = #KEYS / #sizes
local flags, after, owned = {}, {}, {}
local next_field = string.gmatch(ARGV[2], '[^ ]+')
local i, pos, k = 0, 1, 0
for g = 1, #sizes do
  local names = {}
  for j = 1, sizes[g] do names[j] = next_field() end
  local stored = redis.call('HMGET', KEYS[k + 1], unpack(names))
  local marks, written, parts, rparts = {}, {}, {}, {}
  for j = 1, sizes[g] do
    i = i + 1
    local field, seq = names[j], seqs[i]
    local mark = marks[field]
    if mark == nil then mark = tonumber(stored[j] or '0') end
    local new, seqn = '0', tonumber(seq)
    if seqn > mark then
      mark, new = seqn, '1'
      written[field] = seq
      if per > 1 then
        parts[#parts + 1] = string.sub(ARGV[5], pos, pos + lens[i] - 1)
        rparts[#rparts + 1] = received[i]
      end
    end
    if per > 1 then pos = pos + lens[i] end
    marks[field] = mark
    flags[i] = new
    after[i] = written[field] or string.format('%d', mark)
  end
  local fields = {}
  for field, seq in pairs(written) do fields[#fields + 1] = field; fields[#fields + 1] = seq end
  if #fields > 0 then redis.call('HSET', KEYS[k + 1], unpack(fields)) end
  owned[g] = '0'
  if per > 1 and #parts > 0 then
    local entry = {'b', table.concat(parts), 'r', table.concat(rparts, ',')}
    redis.call('XADD', KEYS[k + 2], '*', unpack(entry))
    if ARGV[6] ~= '' and redis.call('GET', KEYS[k + 4]) == ARGV[6] then
      owned[g] = '1'
    else
      redis.call('XADD', KEYS[k + 3], '*', unpack(entry))
    end
  end
  k = k + per
end
return {table.concat(flags), table.concat(after, ','), table.concat(owned)}
"""

# KEYS: mark hash, fused stream, latest hash. ARGV: the stream's maxlen, then per emotion its subject,
# window end and bytes. Each emotion is appended unless its subject's mark (last fused window end) is at or
# past its window; returns each one's stream id ('' for those left out). The latest-state copy gets its
# stream position appended as FusedEmotion.position (field 2, a string: tag 0x12, one length byte as ids
# are shorter than 128 bytes); a later field wins when parsed.
APPEND_ONCE = """
local ids, marks, latest = {}, {}, {}
for i = 2, #ARGV, 3 do
  local subject, window_end, data = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local mark = marks[subject]
  if mark == nil then mark = tonumber(redis.call('HGET', KEYS[1], subject) or '0') end
  if tonumber(window_end) <= mark then
    ids[#ids + 1] = ''
  else
    marks[subject] = tonumber(window_end)
    redis.call('HSET', KEYS[1], subject, window_end)
    local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'e', data, 's', subject)
    latest[subject] = data .. string.char(18, #id) .. id
    ids[#ids + 1] = id
  end
end
local fields = {}
for subject, data in pairs(latest) do fields[#fields + 1] = subject; fields[#fields + 1] = data end
if #fields > 0 then redis.call('HSET', KEYS[3], unpack(fields)) end
return ids
"""


class LuaScript:
    """A script run by EVALSHA inside pipelines. redis-py's registered scripts cost every pipeline an extra
    SCRIPT EXISTS round trip; this loads the script only when Redis answers NOSCRIPT (first use, restart)."""

    def __init__(self, client: redis.Redis | RedisCluster, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def queue(self, pipe: Pipeline, keys: Sequence[str], args: Sequence[object]) -> None:
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    async def pipelined(self, fill: Callable[[Pipeline], None]) -> list:
        """Run the commands `fill` queues (calls of this script among them) in one pipeline; the replies."""
        for attempt in (1, 2):
            async with self.client.pipeline(transaction=False) as pipe:
                fill(pipe)
                try:
                    return await pipe.execute()
                except NoScriptError:  # every EVALSHA failed alike, so none had an effect: load, run again
                    if attempt == 2:
                        raise
            await self.client.script_load(self.source)
        raise AssertionError("unreachable")


def stream_entry_frames(fields: Mapping[bytes, bytes]) -> list[tuple[ingest_pb2.ScoreFrame, int]]:
    """The frames of one shard stream entry, each with its coordinator receive time."""
    frames = ingest_pb2.ScoreBatch.FromString(fields[b"b"]).frames
    received = [int(r) for r in fields[b"r"].split(b",")]
    return list(zip(frames, received, strict=True))


class RedisStore:
    """Store on a Redis server given as redis://HOST:PORT/DB, or on a Redis Cluster (redis+cluster://)."""

    def __init__(self, url: str, maxlen: int = 100_000, prefix: str = "mmer", shards: int = 0) -> None:
        """shards 0: this process fuses what it stores; more: replicas share the store, frames go to their
        subject shard's streams, and a replica fuses the shards whose lease it holds (sharing.py)."""
        self.url = url
        self.shards = shards
        self.replica = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"  # its lease holder id
        self.cluster = url.startswith(CLUSTER_SCHEME)
        self._slots_enforced: bool | None = True if self.cluster else None
        self.client = connect(url)
        self.maxlen = maxlen
        self.p = prefix
        self._store_batch = LuaScript(self.client, STORE_BATCH)
        self._append_once = LuaScript(self.client, APPEND_ONCE)
        self.stream = f"{prefix}:{{fused}}:stream"
        self.latest_key = f"{prefix}:{{fused}}:latest"
        self.fused_mark_key = f"{prefix}:{{fused}}:mark"  # last fused window end per subject
        self.changes = f"{prefix}:{{registry}}:changes"
        self._pending: list[tuple[BatchColumns, int, asyncio.Future]] = []
        self._committer: asyncio.Task | None = None
        self._shard_of: dict[str, int] = {}

    def shard_of(self, subject_id: str) -> int:
        shard = self._shard_of.get(subject_id)
        if shard is None:
            if len(self._shard_of) >= MAX_CACHED_SUBJECTS:
                self._shard_of.clear()
            shard = self._shard_of[subject_id] = zlib.crc32(subject_id.encode()) % self.shards
        return shard

    async def enforces_slots(self) -> bool:
        """Whether each call must keep to one hash slot: a Redis Cluster, or a server in cluster mode."""
        if self._slots_enforced is None:
            self._slots_enforced = (await self.client.info("cluster")).get("cluster_enabled") == 1
        return self._slots_enforced

    def shard_key(self, shard: int, what: str) -> str:
        """Keys of one shard share a hash tag, so they live in one Redis Cluster slot."""
        return f"{self.p}:{{s{shard}}}:{what}"

    def _hwm(self, device_id: str, subject_id: str = "") -> str:
        if self.shards:
            return self.shard_key(self.shard_of(subject_id), "hwm")
        return f"{self.p}:{{dev:{device_id}}}:hwm"

    async def store_frames(self, frames: Sequence[ingest_pb2.ScoreFrame], receive_ns: int = 0) -> list[bool]:
        return (await self.store_batch(read_columns(frames, [receive_ns] * len(frames)), receive_ns))[0]

    async def store_batch(self, cols: BatchColumns, receive_ns: int = 0) -> StoredBatch:
        """Group commit: batches that arrive while a pipeline is in flight go together in the next one, in
        one script call (per hash tag on a cluster). Edge nodes send small batches when the coordinator keeps
        up, and a script call per batch and shard cost more than the frames' own work."""
        waiter: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((cols, receive_ns, waiter))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())
        return await waiter

    async def _commit_pending(self) -> None:
        while self._pending:
            work, self._pending = self._pending, []
            try:
                results = await self._commit([(cols, receive_ns) for cols, receive_ns, _ in work])
            except Exception as exc:
                for *_, waiter in work:
                    if not waiter.done():
                        waiter.set_exception(exc)
            else:
                for (*_, waiter), result in zip(work, results, strict=True):
                    if not waiter.done():  # a cancelled caller (its stream ended): stored, the edge resends
                        waiter.set_result(result)

    @redis_call
    async def _commit(self, work: list[tuple[BatchColumns, int]]) -> list[StoredBatch]:
        """Store several batches in one pipeline; per batch, what storing it did."""
        if len(work) == 1:
            cols = work[0][0]
            frames, devices, modalities = cols.frames, cols.device_ids, cols.modalities
            subjects, seqs = cols.subject_ids, cols.seqs
        else:
            frames = [f for cols, _ in work for f in cols.frames]
            devices = [d for cols, _ in work for d in cols.device_ids]
            modalities = [m for cols, _ in work for m in cols.modalities]
            subjects = [s for cols, _ in work for s in cols.subject_ids]
            seqs = [q for cols, _ in work for q in cols.seqs]
        receive = [str(r) for cols, r in work for _ in cols.frames]
        groups: dict[object, list[int]] = {}  # hash tag (subject shard, or device) -> frame indexes
        if self.shards:
            tag_of = {subject: self.shard_of(subject) for subject in set(subjects)}
            for i, subject in enumerate(subjects):
                groups.setdefault(tag_of[subject], []).append(i)
        else:
            for i, device in enumerate(devices):
                groups.setdefault(device, []).append(i)

        # one script call for every group on a single server; one per group (hash slot) on a cluster
        calls = [[tag] for tag in groups] if await self.enforces_slots() else [list(groups)]

        def fill(pipe: Pipeline) -> None:
            for tags in calls:
                order = [i for tag in tags for i in groups[tag]]
                sizes = ",".join([str(len(groups[tag])) for tag in tags])
                seq_text = ",".join(map(str, [seqs[i] for i in order]))
                received = ",".join([receive[i] for i in order])
                if self.shards:
                    fields = " ".join([f"{devices[i]}/{modalities[i]}" for i in order])
                    records = [field_1(frames[i].SerializeToString()) for i in order]
                    lengths = ",".join(map(str, map(len, records)))
                    args = [received, fields, seq_text, lengths, b"".join(records), self.replica, sizes]
                    whats = ("hwm", "frames", "inbox", "owner")
                    keys = [self.shard_key(tag, what) for tag in tags for what in whats]
                else:
                    args = [received, " ".join([modalities[i] for i in order]), seq_text, "", b"", "", sizes]
                    keys = [self._hwm(tag) for tag in tags]
                self._store_batch.queue(pipe, keys, args)

        results = await self._store_batch.pipelined(fill)
        new = [False] * len(frames)
        mine = [False] * len(frames)
        marks_after = [0] * len(frames)
        for tags, (flags, marks, owned) in zip(calls, results, strict=True):
            order = [i for tag in tags for i in groups[tag]]
            for i, flag, mark in zip(order, flags, map(int, marks.split(b",")), strict=True):
                new[i] = mine[i] = flag == 49  # b"1"
                marks_after[i] = mark
            if self.shards:  # shared: fused here only while this replica holds the shard's lease
                for tag, own in zip(tags, owned, strict=True):
                    if own != 49:
                        for i in groups[tag]:
                            mine[i] = False
        out, start = [], 0
        for cols, _ in work:
            end = start + len(cols.frames)
            keys = zip(devices[start:end], modalities[start:end], strict=True)
            acked = dict(zip(keys, marks_after[start:end], strict=True))
            out.append(StoredBatch(new[start:end], acked, mine[start:end]))
            start = end
        return out

    @redis_call
    async def acked_seq(self, device_id: str, modality: str, subject_id: str = "") -> int:
        field = f"{device_id}/{modality}" if self.shards else modality
        return int(await self.client.hget(self._hwm(device_id, subject_id), field) or 0)

    @redis_call
    async def acked_seqs(self, keys: Sequence[tuple[str, str, str]]) -> list[int]:
        async with self.client.pipeline(transaction=False) as pipe:
            for device, modality, subject in keys:
                pipe.hget(self._hwm(device, subject), f"{device}/{modality}" if self.shards else modality)
            values = await pipe.execute()
        return [int(v or 0) for v in values]

    @redis_call
    async def append_fused(
        self, emotions: Sequence[fusion_pb2.FusedEmotion]
    ) -> list[fusion_pb2.FusedEmotion]:
        if not emotions:
            return []
        args: list[object] = [self.maxlen]
        for emotion in emotions:
            args += (emotion.subject_id, emotion.window_end_ns, emotion.SerializeToString())
        keys = [self.fused_mark_key, self.stream, self.latest_key]
        (positions,) = await self._append_once.pipelined(
            lambda pipe: self._append_once.queue(pipe, keys, args)
        )
        appended = []
        for emotion, position in zip(emotions, positions, strict=True):
            if position:
                emotion.position = position.decode()
                appended.append(emotion)
        return appended

    @redis_call
    async def read_fused(
        self, after_position: str, subjects: Iterable[str] | None, limit: int
    ) -> list[fusion_pb2.FusedEmotion]:
        wanted = set(subjects) if subjects else None
        start = "-" if after_position in ("", "0") else f"({after_position}"
        out: list[fusion_pb2.FusedEmotion] = []
        while len(out) < limit:
            page = await self.client.xrange(self.stream, min=start, max="+", count=max(limit, 100))
            for entry_id, fields in page:
                e = fusion_pb2.FusedEmotion.FromString(fields[b"e"])
                e.position = entry_id.decode()
                if wanted is None or e.subject_id in wanted:
                    out.append(e)
                    if len(out) >= limit:
                        break
            if len(page) < max(limit, 100):
                break
            start = f"({page[-1][0].decode()}"
        return out

    @redis_call
    async def latest(self, subjects: Iterable[str] | None) -> list[fusion_pb2.FusedEmotion]:
        raw = await self.client.hgetall(self.latest_key)
        wanted = set(subjects) if subjects else None
        out = [fusion_pb2.FusedEmotion.FromString(v) for k, v in sorted(raw.items())]
        return [e for e in out if wanted is None or e.subject_id in wanted]

    def _bundle_key(self, modality: str, version: int) -> str:
        return f"{self.p}:{{registry}}:bundle:{modality}:{version}"

    @redis_call
    async def put_model(self, manifest: manifest_pb2.ModelManifest, blobs: Mapping[str, bytes]) -> None:
        name = f"{manifest.modality}:{manifest.version}"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._bundle_key(manifest.modality, manifest.version))
            if blobs:
                pipe.hset(self._bundle_key(manifest.modality, manifest.version), mapping=dict(blobs))
            pipe.hset(f"{self.p}:{{registry}}:manifests", name, manifest.SerializeToString())
            await pipe.execute()

    @redis_call
    async def get_model(
        self, modality: str, version: int
    ) -> tuple[manifest_pb2.ModelManifest, dict[str, bytes]] | None:
        raw = await self.client.hget(f"{self.p}:{{registry}}:manifests", f"{modality}:{version}")
        if raw is None:
            return None
        blobs = await self.client.hgetall(self._bundle_key(modality, version))
        return manifest_pb2.ModelManifest.FromString(raw), {k.decode(): v for k, v in blobs.items()}

    @redis_call
    async def list_manifests(self, modality: str | None) -> list[manifest_pb2.ModelManifest]:
        raw = await self.client.hgetall(f"{self.p}:{{registry}}:manifests")
        out = [manifest_pb2.ModelManifest.FromString(v) for v in raw.values()]
        return sorted(
            (m for m in out if modality in (None, "", m.modality)), key=lambda m: (m.modality, m.version)
        )

    @redis_call
    async def put_rollout(self, modality: str, state: bytes) -> None:
        await self.client.hset(f"{self.p}:{{registry}}:rollouts", modality, state)

    @redis_call
    async def get_rollouts(self) -> dict[str, bytes]:
        raw = await self.client.hgetall(f"{self.p}:{{registry}}:rollouts")
        return {k.decode(): v for k, v in raw.items()}

    @redis_call
    async def announce_rollout(self, modality: str, rollback: bool) -> None:
        await self.client.publish(self.changes, json.dumps({"modality": modality, "rollback": rollback}))

    async def rollout_changes(self, stop: asyncio.Event) -> AsyncIterator[tuple[str, bool]]:
        """Redis pub/sub; polled with a short timeout so that `stop` ends it without cancelling a read.
        A failure resubscribes after a second (and replays every modality), rather than ending the feed."""
        while not stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                with store_errors():
                    await pubsub.subscribe(self.changes)
                for modality in sorted(await self.get_rollouts()):  # what changed while we were away
                    yield modality, False
                while not stop.is_set():
                    with store_errors():
                        message = await pubsub.get_message(timeout=POLL_S)
                    if message is not None:
                        change = json.loads(message["data"])
                        yield change["modality"], bool(change["rollback"])
            except StoreError as exc:
                log.warning("registry change feed: %s; resubscribing", exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await stop.wait()
            finally:
                with contextlib.suppress(StoreError), store_errors():
                    await pubsub.aclose()

    @redis_call
    async def close(self) -> None:
        await self.client.aclose()
