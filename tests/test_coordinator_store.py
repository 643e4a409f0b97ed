"""One suite, both stores: the in-process memory store and Redis on a real redis-server."""

from __future__ import annotations

import asyncio
import gc

import pytest

from coordinator.memory_store import MemoryStore
from coordinator.redis_store import STORE_BATCH, RedisStore, stream_entry_frames
from coordinator.store import StoreError, position_key
from coordinator.validation import read_columns
from mmer.v1 import fusion_pb2, manifest_pb2
from testkit.coordinator_helpers import frame


def store_batch(store, frames, receive_ns=0):
    """The store's store_batch of frames read into columns, as ingest reads them."""
    return store.store_batch(read_columns(frames, [receive_ns] * len(frames)), receive_ns)


@pytest.fixture(params=["memory", "redis", "redis-sharded"])
async def store(request):
    if request.param == "memory":
        s = MemoryStore(maxlen=50)
    else:  # sharded: the layout of replicas sharing fusion (marks per subject shard, frames to shard streams)
        shards = 4 if request.param == "redis-sharded" else 0
        s = RedisStore(request.getfixturevalue("redis_url"), maxlen=50, shards=shards)
    yield s
    await s.close()


def emotion(subject: str, end: int) -> fusion_pb2.FusedEmotion:
    return fusion_pb2.FusedEmotion(subject_id=subject, window_end_ns=end, label="happy", probs=[1, 0, 0, 0])


async def test_dedup_by_device_modality_seq(store) -> None:
    assert await store.store_frames([frame(1), frame(2), frame(2), frame(1, modality="eeg")]) == [
        True,
        True,
        False,
        True,
    ]
    assert await store.store_frames([frame(1), frame(3), frame(1, device="dev-2")]) == [False, True, True]
    assert await store.acked_seq("dev-1", "hr") == 3
    assert await store.acked_seq("dev-1", "eeg") == 1
    assert await store.acked_seq("dev-1", "speech") == 0
    keys = [
        ("dev-1", "hr", "subj-1"),
        ("dev-1", "eeg", "subj-1"),
        ("dev-2", "hr", "subj-1"),
        ("dev-9", "hr", "x"),
    ]
    assert await store.acked_seqs(keys) == [3, 1, 1, 0]
    new, acked, mine = await store_batch(store, [frame(4), frame(2), frame(5), frame(2, modality="eeg")])
    assert new == [True, False, True, True]
    assert acked == {("dev-1", "hr"): 5, ("dev-1", "eeg"): 2}, "the marks after the batch, for the Ack"
    shared = getattr(store, "shards", 0)  # a replica holding no lease fuses nothing it stores
    assert mine == ([False] * 4 if shared else new), "else this replica fuses every new frame it stores"


async def test_fused_stream_positions_order_resume_and_filter(store) -> None:
    appended = await store.append_fused([emotion(f"s{i % 2}", i) for i in range(1, 6)])
    appended += await store.append_fused([emotion(f"s{i % 2}", i) for i in range(6, 11)])
    positions = [e.position for e in appended]
    assert [position_key(p) for p in positions] == sorted(position_key(p) for p in positions)
    assert len(set(positions)) == 10
    after = await store.read_fused(positions[3], None, 100)
    assert [e.window_end_ns for e in after] == list(range(5, 11))
    assert [e.position for e in after] == positions[4:]
    only_s1 = await store.read_fused("", ["s1"], 3)
    assert [e.window_end_ns for e in only_s1] == [1, 3, 5]
    latest = await store.latest(None)
    assert [(e.subject_id, e.window_end_ns, e.position) for e in latest] == [
        ("s0", 10, positions[9]),
        ("s1", 9, positions[8]),
    ]
    assert [e.subject_id for e in await store.latest(["s1"])] == ["s1"]


async def test_a_window_already_fused_is_appended_once(store) -> None:
    """A retry after a lost reply, or a replica taking over, appends nothing twice; the rest goes in."""
    (first,) = await store.append_fused([emotion("s", 5)])
    again = await store.append_fused([emotion("s", 4), emotion("s", 5), emotion("t", 5), emotion("s", 6)])
    assert [(e.subject_id, e.window_end_ns) for e in again] == [("t", 5), ("s", 6)]
    assert all(e.position for e in again)
    kept = await store.read_fused("", None, 100)
    assert [(e.subject_id, e.window_end_ns) for e in kept] == [("s", 5), ("t", 5), ("s", 6)]
    assert kept[0].position == first.position


async def test_fused_stream_is_bounded(store) -> None:
    for i in range(1, 301):
        await store.append_fused([emotion("s", i)])
    kept = await store.read_fused("", None, 1000)
    assert 50 <= len(kept) < 300  # Redis trims approximately (MAXLEN ~)
    assert kept[-1].window_end_ns == 300


async def test_the_memory_stores_fused_stream_leaves_the_garbage_collector_nothing_to_walk() -> None:
    """Every full collection walks every object the collector tracks, and the coordinator answers nothing
    meanwhile: kept emotions must not add to them."""
    store = MemoryStore(maxlen=20_000)
    await store.append_fused([emotion("warm-up", 1)])
    gc.collect()
    before = len(gc.get_objects())
    for start in range(0, 20_000, 500):
        await store.append_fused([emotion(f"s{i % 100}", 10 + i // 100) for i in range(start, start + 500)])
    gc.collect()
    assert len(gc.get_objects()) - before < 1_000, (
        "kept emotions the collector walks (100 subjects' latest aside)"
    )
    replayed = await store.read_fused("", ["s7"], 1000)
    assert [e.window_end_ns for e in replayed] == list(range(10, 210)) and replayed[0].subject_id == "s7"


async def test_bundles_and_rollout_state(store) -> None:
    m = manifest_pb2.ModelManifest(modality="hr", version=2)
    await store.put_model(m, {"model.onnx": b"\x00\x01" * 10, "samples.npz": b"s"})
    await store.put_model(manifest_pb2.ModelManifest(modality="eeg", version=1), {"model.onnx": b"e"})
    got = await store.get_model("hr", 2)
    assert got is not None and got[0] == m and got[1] == {"model.onnx": b"\x00\x01" * 10, "samples.npz": b"s"}
    assert await store.get_model("hr", 3) is None
    assert [(x.modality, x.version) for x in await store.list_manifests(None)] == [("eeg", 1), ("hr", 2)]
    assert [x.version for x in await store.list_manifests("hr")] == [2]
    await store.put_rollout("hr", b'{"stable": 2}')
    assert await store.get_rollouts() == {"hr": b'{"stable": 2}'}


async def test_redis_outage_raises_store_error(tmp_path) -> None:
    from testkit.localhost import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreError, match="redis"):
        await store.store_frames([frame(1)])
    with pytest.raises(StoreError, match="redis"):
        await store.read_fused("0", None, 10)
    with pytest.raises(StoreError, match="redis"):
        await store.latest(None)
    await store.close()


async def test_sharded_store_queues_exactly_the_new_frames_for_the_fuser(redis_url) -> None:

    store = RedisStore(redis_url, shards=4)
    await store_batch(store, [frame(1), frame(2)], receive_ns=7)
    await store_batch(store, [frame(2), frame(3), frame(1, modality="eeg")], receive_ns=8)
    stream = store.shard_key(store.shard_of("subj-1"), "frames")
    entries = [stream_entry_frames(f) for _, f in await store.client.xrange(stream)]
    assert [[(x.modality, x.seq, r) for x, r in e] for e in entries] == [
        [("hr", 1, 7), ("hr", 2, 7)],
        [("hr", 3, 8), ("eeg", 1, 8)],
    ]
    assert entries[1][0][0].probs == frame(3).probs and entries[1][0][0].labels == frame(3).labels
    await store.close()


async def test_the_lease_holder_fuses_its_own_frames_and_the_others_go_to_the_inbox(redis_url) -> None:
    """Frames stored by the replica holding the shard's lease are its to fuse at once (new ones only) and
    kept in the history; frames stored by any other replica go to the inbox too."""
    store = RedisStore(redis_url, shards=4)
    shard = store.shard_of("subj-1")
    stored = [await store_batch(store, [frame(1), frame(2)], receive_ns=7)]  # no one holds the lease
    await store.client.set(store.shard_key(shard, "owner"), store.replica)
    stored.append(await store_batch(store, [frame(2), frame(3)], receive_ns=8))
    await store.client.set(store.shard_key(shard, "owner"), "another replica")
    stored.append(await store_batch(store, [frame(4)], receive_ns=9))
    assert [s.mine for s in stored] == [[False, False], [False, True], [False]]

    async def entries(what: str) -> list[list[tuple[int, int]]]:
        raw = await store.client.xrange(store.shard_key(shard, what))
        return [[(f.seq, r) for f, r in stream_entry_frames(fields)] for _, fields in raw]

    assert await entries("frames") == [[(1, 7), (2, 7)], [(3, 8)], [(4, 9)]]
    assert await entries("inbox") == [[(1, 7), (2, 7)], [(4, 9)]]
    await store.close()


async def test_concurrent_batches_share_one_commit_and_keep_their_own_acks(redis_url) -> None:
    """Batches stored at once (one per device stream) go in one pipeline: each gets its own flags, marks and
    receive times, and a frame two batches both carry is new in the first only."""
    store = RedisStore(redis_url, shards=4)
    a = [frame(1, device="dev-a"), frame(2, device="dev-a")]
    b = [frame(1, device="dev-b"), frame(2, device="dev-a"), frame(3, device="dev-a")]
    c = [frame(1, device="dev-c", modality="eeg")]
    results = await asyncio.gather(
        store_batch(store, a, receive_ns=10), store_batch(store, b, receive_ns=20), store_batch(store, c, 30)
    )
    assert [(r.new, r.acked) for r in results] == [
        ([True, True], {("dev-a", "hr"): 2}),
        ([True, False, True], {("dev-b", "hr"): 1, ("dev-a", "hr"): 3}),
        ([True], {("dev-c", "eeg"): 1}),
    ]
    stream = store.shard_key(store.shard_of("subj-1"), "frames")
    entries = [stream_entry_frames(f) for _, f in await store.client.xrange(stream)]
    assert len(entries) == 1, "one pipeline, one entry for the shard"
    assert [(x.device_id, x.modality, x.seq, r) for x, r in entries[0]] == [
        ("dev-a", "hr", 1, 10),
        ("dev-a", "hr", 2, 10),
        ("dev-b", "hr", 1, 20),
        ("dev-a", "hr", 3, 20),
        ("dev-c", "eeg", 1, 30),
    ]
    await store.close()


async def test_scripts_survive_a_script_cache_flush(redis_url) -> None:
    """A restarted Redis has forgotten the scripts: the next batch loads them again and loses nothing."""
    store = RedisStore(redis_url, shards=4)
    try:
        assert (await store_batch(store, [frame(1)]))[0] == [True]
        await store.client.script_flush()
        new, acked, _ = await store_batch(store, [frame(2), frame(2)])
        assert new == [True, False] and acked == {("dev-1", "hr"): 2}
        assert await store.acked_seq("dev-1", "hr", "subj-1") == 2
    finally:
        await store.close()


async def test_a_batch_over_many_shards_is_one_script_call_and_keeps_each_shards_layout(redis_url) -> None:
    """On a single server a batch spread over every subject shard costs Redis one script call, and each
    shard still gets its own history entry, inbox entry and marks; the flags and marks come back in the
    batch's own order."""
    store = RedisStore(redis_url, shards=4)
    try:
        subjects = [f"subj-{i}" for i in range(12)]
        assert len({store.shard_of(s) for s in subjects}) == 4
        owned = store.shard_of(subjects[0])
        await store.client.set(store.shard_key(owned, "owner"), store.replica)
        batch = [frame(1, device=f"dev-{s}", subject=s) for s in subjects]
        batch.insert(3, frame(1, device=f"dev-{subjects[0]}", subject=subjects[0]))  # a duplicate
        await store.client.script_load(STORE_BATCH)  # else the first call is refused (NOSCRIPT) and repeated
        await store.enforces_slots()
        await store.client.config_resetstat()
        new, acked, mine = await store_batch(store, batch, receive_ns=5)
        stats = await store.client.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 1
        assert new == [True] * 3 + [False] + [True] * 9
        assert mine == [n and store.shard_of(f.subject_id) == owned for n, f in zip(new, batch, strict=True)]
        assert acked == {(f"dev-{s}", "hr"): 1 for s in subjects}
        for shard in range(4):
            mine_here = sorted(s for s in subjects if store.shard_of(s) == shard)

            async def seqs(what: str, shard: int = shard) -> list[list[str]]:
                raw = await store.client.xrange(store.shard_key(shard, what))
                return [sorted(f.subject_id for f, _ in stream_entry_frames(fields)) for _, fields in raw]

            assert await seqs("frames") == [mine_here]
            assert await seqs("inbox") == ([] if shard == owned else [mine_here])
    finally:
        await store.close()
