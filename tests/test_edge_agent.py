"""The agent end to end against the test servicer: synthetic source, all modalities, rejection, hot swap."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import threading
import time

import grpc
import numpy as np
import pytest

from edge_node.agent import Agent
from edge_node.clock import ClockEstimate
from edge_node.inference import load_runner
from edge_node.models import ModelSlot
from edge_node.sources import open_source
from edge_node.spool import Spool
from edge_node.streamer import Streamer
from mmer.v1 import registry_pb2
from mmer_core.bundle import load_public_key
from mmer_core.modalities import MODALITIES
from mmer_core.synthetic import Session, SessionConfig, stream_windows
from mmer_core.windowing import Window
from testkit.edge_models import bundle_blobs, make_bundle
from testkit.edge_servicer import EdgeTestServer
from testkit.speech_audio import voiced


@pytest.fixture
async def server():
    srv = EdgeTestServer()
    await srv.start()
    yield srv
    await srv.stop()


def build_agent(srv, tmp_path, modalities=MODALITIES) -> Agent:
    keys, models = tmp_path / "keys", tmp_path / "models"
    for m in modalities:
        make_bundle(models / m, keys, m, 1)
    pub = load_public_key(keys / "trainer.pub")
    slots = {m: ModelSlot(m, load_runner(models / m, pub)) for m in modalities}
    spool = Spool(tmp_path / "spool")
    clock = ClockEstimate()
    streamer = Streamer(lambda: grpc.aio.insecure_channel(srv.target), spool, clock, "dev1", token="t")
    return Agent("dev1", "s1", slots, spool, streamer, clock, pub, models)


async def test_synthetic_session_scores_every_window_once_in_order(server, tmp_path):
    agent = build_agent(server, tmp_path)
    # --fast feeds windows as fast as the machine can make them; a queue that holds them all keeps a loaded
    # machine from dropping some (drops are what test_sensor_reading_never_blocks... checks)
    agent.queue = __import__("queue").Queue(maxsize=1000)
    windows = open_source("synthetic:3", MODALITIES, "s1", fast=True, seconds=70.0)
    await agent.run(windows)
    c = agent.counters
    # a camera frame without a face is counted and not scored; every other window is scored once
    assert c.rejected == 0 and c.queue_dropped == 0 and c.scored + c.no_face == c.windows
    assert c.no_face < 0.3 * c.frames_by_version[("image", 1)], "the drawn faces are mostly found"
    for m in MODALITIES:
        seqs = server.store.seqs(m)
        assert seqs == list(range(1, len(seqs) + 1)) and seqs
        f = server.store.frames[("dev1", m)][-1]
        assert (
            f.model_version == 1
            and abs(sum(f.probs) - 1) < 1e-3
            and f.labels == ["happy", "angry", "sad", "calm"]
        )
        assert (
            f.window_end_ns > f.window_start_ns
            and f.inference_end_ns >= f.inference_start_ns >= f.window_end_ns
        )
        assert f.send_ns >= f.inference_end_ns and f.truth_label
    assert sum(len(server.store.seqs(m)) for m in MODALITIES) == c.scored
    assert len(server.store.seqs("image")) + c.no_face == 350 and len(server.store.seqs("hr")) == 3
    last = server.store.status[-1]
    assert last.device_id == "dev1" and dict(last.model_versions) == dict.fromkeys(MODALITIES, 1)


async def test_window_ends_follow_the_sample_clock_in_real_time(server, tmp_path, caplog):
    """The synthetic source hands samples over in 0.2 s chunks, so an eeg window ending at x.5 s arrives with the
    chunk ending at x.6 s; its frame still says it ended at x.5: hops stay regular and the wait shows as queue."""
    agent = build_agent(server, tmp_path, ("eeg", "image"))
    caplog.set_level(logging.INFO, logger="edge_node.agent")
    started = time.monotonic()
    await agent.run(open_source("synthetic:5", ["eeg", "image"], "s1", fast=False, seconds=4.0))
    took = time.monotonic() - started
    (logged,) = [float(m) for m in re.findall(r"agent done in ([0-9.]+) ?s", caplog.text)]
    assert 3.5 <= logged <= took + 0.1, (logged, took)  # the whole run, not the moment after it
    eeg = server.store.frames[("dev1", "eeg")]
    hops = [(b.window_end_ns - a.window_end_ns) / 1e6 for a, b in itertools.pairwise(eeg)]
    assert len(hops) >= 3 and all(abs(h - 500) < 15 for h in hops), hops
    queued = sorted((f.inference_start_ns - f.window_end_ns) / 1e6 for f in eeg)
    assert queued[-1] > 60, f"windows that came a chunk late show it in their queue hop: {queued}"


def test_sensor_reading_never_blocks_on_a_stalled_inference_lane(server, tmp_path):
    agent = build_agent(server, tmp_path, ("eeg",))
    agent.queue = __import__("queue").Queue(maxsize=2)
    windows = [Window("eeg", i * 0.5, i * 0.5 + 2, np.zeros((14, 256))) for i in range(10)]
    agent.read_source(iter(windows))  # no inference lane running: must still return at once
    assert agent.counters.queue_dropped == 8 and agent.source_done.is_set()
    assert [agent.queue.get_nowait().window.t_start for _ in range(2)] == [4.0, 4.5]


async def test_nan_or_wrong_shape_windows_are_rejected_and_counted(server, tmp_path, caplog):
    agent = build_agent(server, tmp_path, ("eeg", "speech"))
    good = np.random.default_rng(0).normal(0, 10, (14, 256))
    nan = good.copy()
    nan[3, 10] = np.nan
    windows = [
        Window("eeg", 0, 2, good),
        Window("eeg", 0.5, 2.5, nan),
        Window("eeg", 1, 3, np.zeros((3, 256))),
        Window("speech", 0, 1, np.zeros(123, np.float32)),
        Window("eeg", 1.5, 3.5, good),
    ]
    await agent.run(iter(windows))
    assert agent.counters.rejected == 3 and agent.counters.scored == 2
    assert server.store.seqs("eeg") == [1, 2]
    assert "window rejected: eeg" in caplog.text and "window rejected: speech" in caplog.text
    assert agent.status().windows_rejected == 3


async def test_hot_swap_mid_stream_loses_no_window_and_frames_name_versions(server, tmp_path):
    agent = build_agent(server, tmp_path, ("eeg",))
    keys = tmp_path / "keys"
    v2 = make_bundle(tmp_path / "incoming-v2", keys, "eeg", 2, seed=9)
    server.store.bundles[("eeg", 2)] = (v2.manifest, bundle_blobs(v2))
    bad = make_bundle(tmp_path / "incoming-v3", keys, "eeg", 3, seed=9, wrong_samples=True)
    server.store.bundles[("eeg", 3)] = (bad.manifest, bundle_blobs(bad))
    channel = grpc.aio.insecure_channel(server.target)
    # eeg paced at 25x real time: a window every 20 ms, so the swaps land mid-stream
    windows = stream_windows(
        Session(SessionConfig("s1", 1, duration_s=32.0)), ["eeg"], realtime=True, speed=25.0
    )

    def limited():
        for i, w in enumerate(windows):
            if i >= 60:
                return
            yield w

    async def push_updates():
        await asyncio.sleep(0.3)
        await server.store.updates.put(registry_pb2.ModelUpdate(manifest=v2.manifest, stage="serving"))
        await asyncio.sleep(0.3)
        await server.store.updates.put(registry_pb2.ModelUpdate(manifest=bad.manifest, stage="serving"))

    pusher = asyncio.create_task(push_updates())
    await agent.run(limited(), channel)
    await pusher
    await channel.close()
    frames = server.store.frames[("dev1", "eeg")]
    assert [f.seq for f in frames] == list(range(1, agent.counters.windows + 1))
    versions = [f.model_version for f in frames]
    assert versions == sorted(versions) and set(versions) == {1, 2}
    assert agent.slots["eeg"].version == 2 and agent.counters.updates_refused == 1


async def test_full_spool_while_the_coordinator_is_down_drops_oldest_and_reports_it(server, tmp_path):
    agent = build_agent(server, tmp_path, ("eeg",))
    agent.spool.close()
    agent.spool = agent.streamer.spool = Spool(tmp_path / "small-spool", max_frames=5)
    await server.stop()
    good = np.random.default_rng(1).normal(0, 10, (14, 256))
    windows = [Window("eeg", i * 0.5, i * 0.5 + 2, good) for i in range(12)]
    await agent.run(iter(windows), drain_s=0.3)
    assert agent.counters.scored == 12
    assert agent.spool.dropped == 7 and agent.status().frames_dropped == 7
    assert [s for _, s, _ in agent.spool.unsent({})] == [8, 9, 10, 11, 12], "the newest frames are kept"


async def test_stop_ends_the_run_even_when_a_live_source_goes_quiet(server, tmp_path):
    agent = build_agent(server, tmp_path, ("eeg",))
    silent = threading.Event()
    good = np.random.default_rng(2).normal(0, 10, (14, 256))

    def live_sensor():
        yield Window("eeg", 0, 2, good)
        silent.wait(30)  # the headset stops sending: no window comes to carry the stop flag

    asyncio.get_running_loop().call_later(0.5, agent.stopping.set)
    try:
        await asyncio.wait_for(agent.run(live_sensor(), drain_s=2.0), 10)
    finally:
        silent.set()
    assert agent.counters.scored == 1 and server.store.seqs("eeg") == [1]


async def test_replayed_speech_folder_is_scored_with_the_files_truth_labels(server, tmp_path):
    import wave

    rate = 16000
    for name, seconds in (
        ("03-01-05-01-02-01-01.wav", 2.0),
        ("03-01-02-01-01-01-02.wav", 1.5),
    ):  # angry, calm
        pcm = (voiced(seconds, 200.0, 0.3, rate) * 32767).astype("<i2")
        with wave.open(str(tmp_path / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
    agent = build_agent(server, tmp_path / "node", ("speech",))
    await agent.run(open_source(f"replay:{tmp_path}", ["speech"], "s1", fast=True, seconds=None))
    frames = server.store.frames[("dev1", "speech")]
    # sorted by name: the calm file (…-02-…) plays first, then the angry one: an utterance each
    assert [f.truth_label for f in frames] == ["calm", "angry"]
    assert [f.seq for f in frames] == [1, 2]
    assert (frames[0].window_end_ns - frames[0].window_start_ns) / 1e9 == pytest.approx(1.5, abs=0.1)
