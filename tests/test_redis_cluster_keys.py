"""The Redis layout holds on a Redis Cluster: what one call touches shares one hash slot.

A redis-server in cluster mode that owns every slot refuses cross-slot commands and scripts just as a
cluster of many nodes does, so the store's calls run against it here."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis as redis_sync

from coordinator.assembly import open_coordinator
from coordinator.redis_store import RedisStore
from coordinator.validation import read_columns
from mmer.v1 import fusion_pb2
from mmer_core.config import CoordinatorConfig
from testkit.coordinator_helpers import frame
from testkit.localhost import start_redis


def store_batch(store, frames, receive_ns=0):
    """The store's store_batch of frames read into columns, as ingest reads them."""
    return store.store_batch(read_columns(frames, [receive_ns] * len(frames)), receive_ns)


@pytest.fixture()
def cluster_url(tmp_path: Path):
    proc, url = start_redis(tmp_path, cluster=True)
    client = redis_sync.Redis.from_url(url)
    try:
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster did not come up"
            time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.kill()
        proc.wait()


async def test_cross_slot_calls_are_refused_there(cluster_url: str) -> None:
    """The fixture really enforces slots (else the next test proves nothing)."""
    store = RedisStore(cluster_url)
    try:
        with pytest.raises(redis_sync.exceptions.ResponseError, match="same slot"):
            await store.client.mset({"{a}x": 1, "{b}y": 2})
    finally:
        await store.close()


async def test_ingest_fused_appends_and_registry_keep_to_one_slot_per_call(cluster_url: str) -> None:
    store = RedisStore(cluster_url, shards=4)
    try:
        frames = [frame(1, subject=f"subj-{i}", device=f"dev-{i}") for i in range(8)]
        new, acked, _ = await store_batch(store, frames, receive_ns=1)
        assert new == [True] * 8 and set(acked.values()) == {1}
        await store.client.set(store.shard_key(store.shard_of("subj-0"), "owner"), store.replica)
        mine = (await store_batch(store, [frame(2, subject="subj-0", device="dev-0")], receive_ns=2)).mine
        assert mine == [True], "stored by the lease holder: its to fuse"
        assert await store.acked_seqs([("dev-3", "hr", "subj-3")]) == [1]
        emotions = [
            fusion_pb2.FusedEmotion(
                subject_id=f"subj-{i}", window_end_ns=10**9, label="calm", probs=[0, 0, 0, 1]
            )
            for i in range(8)
        ]
        positions = [e.position for e in await store.append_fused(emotions)]
        assert all(positions) and len(set(positions)) == 8
        again = fusion_pb2.FusedEmotion(subject_id="subj-0", window_end_ns=10**9)
        assert await store.append_fused([again]) == [], "each subject's window once"
        assert len(await store.latest(None)) == 8
        assert [e.subject_id for e in await store.read_fused("", ["subj-2"], 10)] == ["subj-2"]
    finally:
        await store.close()


async def test_a_replica_fuses_what_another_stored_through_each_shards_inbox(cluster_url: str) -> None:
    """On a cluster every shard's inbox is in its own slot, so the owner reads each with its own call: frames
    stored by another replica (one holding no lease) are fused all the same."""
    from coordinator.sharing import SHARDS

    app = await open_coordinator(CoordinatorConfig(), RedisStore(cluster_url, shards=SHARDS), lease_s=1.0)
    other = RedisStore(cluster_url, shards=SHARDS)
    try:
        assert app.fuser.cluster
        deadline = time.monotonic() + 10
        while len(app.fuser.engines) < SHARDS:
            assert time.monotonic() < deadline, "the replica did not take every shard"
            await asyncio.sleep(0.05)
        subjects = [f"subj-{i}" for i in range(6)]
        base = time.time_ns() - 60 * 10**9
        for seq in range(1, 7):
            frames = [
                frame(seq, subject=s, device=f"dev-{s}", end_ns=base + seq * 500_000_000) for s in subjects
            ]
            await store_batch(other, frames, receive_ns=time.time_ns())
        while len(emotions := await app.store.read_fused("", None, 100)) < len(subjects) * 3:
            assert time.monotonic() < deadline, f"{len(emotions)} windows fused"
            await asyncio.sleep(0.05)
        assert {e.subject_id for e in emotions} == set(subjects)
    finally:
        await app.close()
        await other.close()


async def test_the_store_runs_on_a_three_node_cluster(redis_cluster_url: str) -> None:
    """redis+cluster:// names one node and the client finds the others: ingest with dedup and acks over
    subjects on all three, the scripts loaded again after a flush, the fused append and its reads, and the
    registry with its change feed."""
    from coordinator.sharing import SHARDS
    from mmer.v1 import common_pb2, manifest_pb2

    store = RedisStore(redis_cluster_url, shards=SHARDS)
    try:
        subjects = [f"subj-{i}" for i in range(24)]
        frames = [frame(1, subject=s, device=f"dev-{s}") for s in subjects]
        new, acked, _ = await store_batch(store, frames + frames[:2], receive_ns=1)
        assert new == [True] * 24 + [False] * 2 and set(acked.values()) == {1}
        shards = {store.shard_key(store.shard_of(s), "hwm") for s in subjects}
        assert len({store.client.get_node_from_key(k).name for k in shards}) == 3, "subjects on every node"
        assert await store.acked_seqs([(f"dev-{s}", "hr", s) for s in subjects]) == [1] * 24
        await store.client.script_flush()
        assert (await store_batch(store, [frame(2, subject="subj-5", device="dev-subj-5")]))[0] == [True]

        emotions = [
            fusion_pb2.FusedEmotion(subject_id=s, window_end_ns=10**9, label="calm", probs=[0, 0, 0, 1])
            for s in subjects[:4]
        ]
        assert len(await store.append_fused(emotions)) == len(emotions)
        assert [e.subject_id for e in await store.read_fused("", None, 10)] == subjects[:4]
        assert len(await store.latest(None)) == 4

        manifest = manifest_pb2.ModelManifest(
            modality="hr", version=1, taxonomy=common_pb2.Taxonomy(name="q", labels=["a", "b"])
        )
        await store.put_model(manifest, {"model.onnx": b"onnx"})
        assert (await store.get_model("hr", 1))[1] == {"model.onnx": b"onnx"}
        assert [m.version for m in await store.list_manifests("hr")] == [1]
        await store.put_rollout("hr", b"state")
        assert await store.get_rollouts() == {"hr": b"state"}
        stop = asyncio.Event()
        feed = store.rollout_changes(stop)
        assert await asyncio.wait_for(anext(feed), 5) == ("hr", False), "after subscribing: every modality"
        await store.announce_rollout("hr", True)
        assert await asyncio.wait_for(anext(feed), 5) == ("hr", True)
        stop.set()
        await feed.aclose()
    finally:
        await store.close()
