"""Replicas sharing one real Redis, in one process: the shard's owner fuses the frames it stores itself at
once, frames stored by another replica reach it through the shard's inbox, and each window is fused once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from coordinator.assembly import engine_factory, open_coordinator
from coordinator.hub import Hub
from coordinator.measures import Measures
from coordinator.redis_store import RedisStore, stream_entry_frames
from coordinator.service import Coordinator
from coordinator.sharing import SHARDS, SharedFuser
from mmer.v1 import fusion_pb2
from mmer_core.config import CoordinatorConfig
from testkit.coordinator_helpers import batch, frame

pytestmark = pytest.mark.redis
SUBJECTS = [f"subj-{i}" for i in range(12)]


async def replica(redis_url: str) -> Coordinator:
    config = CoordinatorConfig(fusion_grace_s=2.0)  # every window waits for both paths
    return await open_coordinator(config, RedisStore(redis_url, shards=SHARDS), lease_s=1.0)


async def until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def stop(*apps: Coordinator) -> None:
    for app in apps:
        await app.close()


async def test_owner_fuses_its_frames_directly_and_the_others_through_the_inbox(shared_url: str) -> None:
    """Every subject's hr device sends to replica a and its eeg device to replica b: each window is fused once,
    from both modalities, and a shard's inbox holds only the frames the replica not owning it stored."""
    a, b = await replica(shared_url), await replica(shared_url)
    try:
        await until(lambda: len(a.fuser.engines) == len(b.fuser.engines) == SHARDS // 2, 10, "shards split")
        base = time.time_ns() - 60 * 10**9

        def both_known() -> bool:
            """Every subject's owner has seen both modalities: until then it cannot know to wait for the other
            one, and a window the first one completes on its own is fused without it."""
            for s in SUBJECTS:
                shard = a.store.shard_of(s)
                engine = a.fuser.engines.get(shard) or b.fuser.engines.get(shard)
                if (
                    engine is None
                    or s not in engine.subjects
                    or set(engine.subjects[s].frames) != {"hr", "eeg"}
                ):
                    return False
            return True

        for seq in range(1, 9):
            end = base + seq * 500_000_000
            for app, modality in ((a, "hr"), (b, "eeg")):
                frames = [frame(seq, modality, f"{s}-{modality}", s, end) for s in SUBJECTS]
                await app.ingest(batch(frames, seq), time.time_ns())
            if seq == 1:
                await until(both_known, 10, "both modalities of every subject at its owner")
        client = a.store.client

        async def fused() -> list[fusion_pb2.FusedEmotion]:
            return [
                fusion_pb2.FusedEmotion.FromString(f[b"e"]) for _, f in await client.xrange(a.store.stream)
            ]

        deadline = time.monotonic() + 10
        while len(emotions := await fused()) < len(SUBJECTS) * 4:
            assert time.monotonic() < deadline, f"{len(emotions)} windows fused"
            await asyncio.sleep(0.05)
        windows = Counter((e.subject_id, e.window_end_ns) for e in emotions)
        assert set(windows.values()) == {1}, "a window was fused twice"
        assert all({c.modality for c in e.contributions} == {"hr", "eeg"} for e in emotions)
        used = {a.store.shard_of(s) for s in SUBJECTS}
        for app, foreign in ((a, "eeg"), (b, "hr")):
            for shard in set(app.fuser.owned()) & used:
                inbox = await client.xrange(a.store.shard_key(shard, "inbox"))
                stored = {f.modality for _, fields in inbox for f, _ in stream_entry_frames(fields)}
                assert stored == {foreign}, f"shard {shard}: inbox holds {stored}, not just the other's"
                history = await client.xrange(a.store.shard_key(shard, "frames"))
                assert len(history) >= len(inbox)
        assert a.counters["fused_emotions"] + b.counters["fused_emotions"] == len(SUBJECTS) * 4
    finally:
        await stop(a, b)


async def test_a_frame_met_twice_in_a_takeover_is_fed_once(redis_url: str) -> None:
    """A replica taking over reads the shard's recent history and then its inbox, which overlap: frames
    already fed (by seq, per device and modality) are skipped, so no window sees a frame twice."""
    store = RedisStore(redis_url, shards=SHARDS)
    config = CoordinatorConfig()
    sharing = SharedFuser(engine_factory(config, {}), store, Hub(), Measures.new(100), config.idle_check_s)
    sharing.engines[0], sharing._fed[0] = sharing.new_engine(), {}
    base = time.time_ns() - 60 * 10**9
    frames = [(frame(seq, end_ns=base + seq * 250_000_000), 1) for seq in range(1, 9)]
    sharing._feed_stored(0, frames[:6])
    sharing._feed_stored(0, frames[3:])
    state = sharing.engines[0].subjects["subj-1"]
    assert [r[5] for r in state.frames["hr"]] == list(range(1, 9))
    sharing._feed_stored(1, frames)  # a shard this replica does not own: nothing to do
    assert list(sharing.engines) == [0]
    await store.close()


async def test_the_seq_marks_of_a_subject_the_engine_forgot_are_dropped(redis_url: str) -> None:
    """A replica keeps the last seq it fed per device and modality; once its fusion loop forgets an idle
    subject, that subject's marks go too, while an active subject's stay: a replica running for months keeps
    no mark of every device it ever met."""
    store = RedisStore(redis_url, shards=SHARDS)
    config = CoordinatorConfig(idle_s=30.0)
    sharing = SharedFuser(engine_factory(config, {}), store, Hub(), Measures.new(100), forget_every_s=0.05)
    engine = sharing.engines[0] = sharing.new_engine()
    sharing._fed[0] = {}
    now = time.time_ns()
    old = [
        (frame(seq, subject="gone", end_ns=now - 120 * 10**9 + seq * 10**9), now - 60 * 10**9)
        for seq in (1, 2)
    ]
    fresh = [(frame(1, device="dev-2", subject="stays", end_ns=now - 10**9), now)]
    sharing._feed_stored(0, old + fresh)
    engine.close_due(now + 10**9)
    assert set(sharing._fed[0]) == {"gone", "stays"}
    sharing.loop.start()
    try:
        for _ in range(40):  # the loop looks for idle subjects when awake, at most every forget_every_s
            await asyncio.sleep(0.05)
            sharing.loop.take([])
            if "gone" not in sharing._fed[0]:
                break
        assert "gone" not in engine.subjects
        assert sharing._fed[0] == {"stays": {("dev-2", "hr"): 1}}
    finally:
        await sharing.loop.stop()
        await store.close()
