"""Two coordinator processes on one real Redis: a model pushed or rolled back through one reaches the
WatchModels streams of the other."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import grpc
import pytest

from mmer.v1 import registry_pb2, registry_pb2_grpc
from mmer_core import bundle
from testkit.coordinator_helpers import MODEL, chunks, signed, start_replica, wait_serving

pytestmark = [pytest.mark.slow, pytest.mark.redis]


async def test_a_push_and_a_rollback_through_one_replica_reach_watchers_of_the_other(
    redis_url: str, tmp_path: Path
) -> None:
    priv_path, pub_path = bundle.generate_keypair(tmp_path / "keys")
    priv = bundle.load_private_key(priv_path)
    (a, target_a), (b, target_b) = (
        start_replica(redis_url, "--trainer-pubkey", str(pub_path)),
        start_replica(redis_url, "--trainer-pubkey", str(pub_path)),
    )
    try:
        await asyncio.gather(wait_serving(target_a), wait_serving(target_b))
        async with grpc.aio.insecure_channel(target_a) as ch_a, grpc.aio.insecure_channel(target_b) as ch_b:
            pusher, watched = registry_pb2_grpc.RegistryStub(ch_a), registry_pb2_grpc.RegistryStub(ch_b)
            watch = watched.WatchModels(registry_pb2.WatchModelsRequest(device_id="dev-1", modalities=["hr"]))
            await asyncio.sleep(0.5)  # the watch is open on b before anything is pushed
            await pusher.PushModel(chunks(signed(priv, 1), {"model.onnx": MODEL}))
            first = await asyncio.wait_for(watch.read(), 10)
            assert (first.manifest.modality, first.manifest.version, first.rollback) == ("hr", 1, False)
            assert first.manifest.signature, "the full manifest, loaded from the shared store"
            await pusher.PushModel(chunks(signed(priv, 2), {"model.onnx": MODEL}))
            await pusher.Promote(registry_pb2.PromoteRequest(modality="hr", version=2))
            second = await asyncio.wait_for(watch.read(), 10)
            assert (second.manifest.version, second.rollback) == (2, False)
            await pusher.Rollback(registry_pb2.RollbackRequest(modality="hr", reason="test"))
            third = await asyncio.wait_for(watch.read(), 10)
            assert (third.manifest.version, third.rollback) == (1, True)
            listed = await watched.ListModels(registry_pb2.ListModelsRequest(modality="hr"))
            assert {(v.version, v.stage) for v in listed.versions} == {(1, "stable"), (2, "rolled_back")}
            watch.cancel()
    finally:
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
        for p in (a, b):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
