"""The edge node's per-wearer baseline: calibration before scoring, relative features for the models that ask
for them, state kept across restarts, set aside when it is another wearer's or does not parse."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import grpc
import numpy as np
import pytest

from edge_node.agent import Agent
from edge_node.clock import ClockEstimate
from edge_node.inference import load_runner
from edge_node.models import ModelSlot
from edge_node.spool import Spool
from edge_node.streamer import Streamer
from edge_node.wearer_baselines import STATE_FILE, Calibrating, WearerBaselines
from mmer_core.bundle import BundleError, load_public_key
from mmer_core.preprocess import preprocess
from mmer_core.wearer_baseline import HORIZON_PARAM, LEVELS_PARAM, WARMUP_PARAM, WearerBaseline
from mmer_core.windowing import Window
from mmer_core.wrist import WristData
from testkit.edge_models import make_bundle

WARMUP = 4


def eeg_windows(n: int, seed: int = 0) -> list[Window]:
    rng = np.random.default_rng(seed)
    level = rng.uniform(5, 20, (14, 1))  # this wearer's own amplitude per channel
    return [Window("eeg", i * 0.5, i * 0.5 + 2, rng.normal(0, 1, (14, 256)) * level) for i in range(n)]


def agent_for(tmp_path: Path, params: dict[str, float] | None, baselines: WearerBaselines) -> Agent:
    keys, models = tmp_path / "keys", tmp_path / "models"
    if not (models / "eeg").exists():
        make_bundle(models / "eeg", keys, "eeg", 1, params=params)
    pub = load_public_key(keys / "trainer.pub")
    slots = {"eeg": ModelSlot("eeg", load_runner(models / "eeg", pub))}
    spool = Spool(tmp_path / "spool")
    clock = ClockEstimate()
    streamer = Streamer(lambda: grpc.aio.insecure_channel("127.0.0.1:9"), spool, clock, "dev1")
    return Agent("dev1", "s1", slots, spool, streamer, clock, pub, models, baselines=baselines)


def test_a_model_asking_for_a_baseline_scores_only_after_calibration_and_on_relative_features(
    tmp_path,
) -> None:
    state = tmp_path / STATE_FILE
    agent = agent_for(tmp_path, {WARMUP_PARAM: WARMUP, HORIZON_PARAM: 100}, WearerBaselines(state, "s1"))
    windows = eeg_windows(10)
    frames = [agent.score_window(w, 0) for w in windows]
    assert [f is None for f in frames] == [True] * (WARMUP - 1) + [False] * (10 - WARMUP + 1)
    assert agent.counters.calibrating == WARMUP - 1 and agent.counters.scored == 10 - WARMUP + 1
    reference = WearerBaseline(len(preprocess("eeg", windows[0].data)), horizon=100)
    for w in windows:
        reference.update(preprocess("eeg", w.data))
    expected = agent.slots["eeg"].current.run(
        reference.standardise(preprocess("eeg", windows[-1].data))[None]
    )
    np.testing.assert_allclose(frames[-1].probs, expected[0] / expected[0].sum(), rtol=1e-5)
    unrelated = agent.slots["eeg"].current.run(preprocess("eeg", windows[-1].data)[None])
    assert not np.allclose(frames[-1].probs, unrelated[0], atol=1e-3), (
        "the raw features would score otherwise"
    )
    agent.baselines.save()
    saved = json.loads(state.read_text())
    assert saved["subject_id"] == "s1" and saved["modalities"]["eeg"]["n"] == 10


def test_a_restart_keeps_the_wearers_calibration(tmp_path) -> None:
    params = {WARMUP_PARAM: WARMUP}
    first = agent_for(tmp_path, params, WearerBaselines(tmp_path / STATE_FILE, "s1", save_every=2))
    for w in eeg_windows(6):
        first.score_window(w, 0)
    again = agent_for(tmp_path, params, WearerBaselines(tmp_path / STATE_FILE, "s1"))
    assert again.baselines.stats["eeg"].n == 6, "saved every two windows"
    assert again.score_window(eeg_windows(1, seed=5)[0], 0) is not None and again.counters.calibrating == 0


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"subject_id": "s2", "modalities": {}}),
        "{not json",
        json.dumps(
            {
                "subject_id": "s1",
                "modalities": {
                    "eeg": {"features": 2, "horizon": 9, "n": 1, "mean": [0.0], "var": [0.0, 0.0]}
                },
            }
        ),
        json.dumps(["s1"]),
    ],
)
def test_another_wearers_or_broken_state_is_set_aside_and_calibration_starts_again(
    tmp_path, content, caplog
) -> None:
    state = tmp_path / STATE_FILE
    state.write_text(content)
    with caplog.at_level(logging.WARNING):
        baselines = WearerBaselines(state, "s1")
    assert baselines.stats == {} and not state.exists()
    assert state.with_name(STATE_FILE + ".bad").read_text() == content, "kept for a look, not lost"
    assert "calibrating again" in caplog.text
    agent = agent_for(tmp_path, {WARMUP_PARAM: WARMUP}, baselines)
    assert agent.score_window(eeg_windows(1)[0], 0) is None and agent.counters.calibrating == 1


def test_swapping_in_a_model_that_needs_a_longer_calibration_is_not_a_failure(tmp_path) -> None:
    """A window the new model cannot score yet is not scored, and the new model is not rolled back for it:
    the baseline was kept all along, so it serves once the wearer's windows reach its warm-up."""
    agent = agent_for(tmp_path, None, WearerBaselines(None, "s1"))
    windows = eeg_windows(8)
    assert all(agent.score_window(w, 0) is not None for w in windows[:3])
    make_bundle(tmp_path / "v2", tmp_path / "keys", "eeg", 2, seed=4, params={WARMUP_PARAM: 5})
    slot = agent.slots["eeg"]
    slot.swap(load_runner(tmp_path / "v2", load_public_key(tmp_path / "keys" / "trainer.pub")))
    frames = [agent.score_window(w, 0) for w in windows[3:]]
    assert frames[0] is None and agent.counters.calibrating == 1, "4 windows seen, 5 needed"
    assert all(f is not None and f.model_version == 2 for f in frames[1:])
    assert slot.rollbacks == 0 and slot.version == 2


@pytest.mark.parametrize(
    "params", [{WARMUP_PARAM: -1}, {WARMUP_PARAM: 1.5}, {WARMUP_PARAM: 9, HORIZON_PARAM: 0}]
)
def test_a_signed_manifest_with_impossible_baseline_params_is_refused(tmp_path, params) -> None:
    make_bundle(tmp_path / "eeg", tmp_path / "keys", "eeg", 1, params=params)
    with pytest.raises(BundleError, match="wearer_baseline"):
        load_runner(tmp_path / "eeg", load_public_key(tmp_path / "keys" / "trainer.pub"))


def test_calibrating_says_how_far_it_is() -> None:
    baselines = WearerBaselines(None, "s1")
    with pytest.raises(Calibrating, match="eeg: 0 of 3"):
        baselines.model_input("eeg", np.zeros(5), {WARMUP_PARAM: 3})
    np.testing.assert_array_equal(baselines.model_input("eeg", np.ones(5), {}), np.ones(5))


def test_a_state_file_that_cannot_be_written_costs_only_the_saving(tmp_path, caplog) -> None:
    unwritable = tmp_path / "gone" / STATE_FILE  # its directory does not exist
    agent = agent_for(tmp_path, {WARMUP_PARAM: 2}, WearerBaselines(unwritable, "s1", save_every=1))
    with caplog.at_level(logging.WARNING):
        frames = [agent.score_window(w, 0) for w in eeg_windows(3)]
    assert frames[0] is None and frames[1] is not None and frames[2] is not None
    assert "wearer baseline not saved" in caplog.text and agent.baselines.stats["eeg"].n == 3


def wrist_windows(n: int, eda: bool) -> list[Window]:
    """Beats of a heart at 70-80 bpm and, with eda, the skin conductance a wrist gives beside them."""
    rng = np.random.default_rng(4)
    out = []
    for i in range(n):
        rr = 60.0 / rng.uniform(70, 80)
        t = np.arange(rr, 60.0, rr)
        skin = np.column_stack([np.arange(240) / 4.0, np.full(240, rng.uniform(1, 3))]) if eda else None
        out.append(
            Window("hr", 5.0 * i, 5.0 * i + 60, WristData(np.column_stack([t, np.full(t.size, rr)]), skin))
        )
    return out


def test_an_hr_model_with_levels_that_needs_eda_is_given_what_it_was_trained_on(tmp_path) -> None:
    keys, models = tmp_path / "keys", tmp_path / "models"
    params = {WARMUP_PARAM: 2, HORIZON_PARAM: 100, LEVELS_PARAM: 1.0, "requires_eda": 1.0}
    make_bundle(models / "hr", keys, "hr", 1, params=params)
    pub = load_public_key(keys / "trainer.pub")
    spool = Spool(tmp_path / "spool")
    clock = ClockEstimate()
    streamer = Streamer(lambda: grpc.aio.insecure_channel("127.0.0.1:9"), spool, clock, "dev1")
    slots = {"hr": ModelSlot("hr", load_runner(models / "hr", pub))}
    agent = Agent(
        "dev1", "s1", slots, spool, streamer, clock, pub, models, baselines=WearerBaselines(None, "s1")
    )
    beats_only = [agent.score_window(w, 0) for w in wrist_windows(3, eda=False)]
    assert beats_only == [None] * 3 and agent.counters.rejected == 3, "no EDA: not scored, never zeros"
    fresh = WearerBaselines(None, "s1")
    agent.baselines = fresh
    frames = [agent.score_window(w, 0) for w in wrist_windows(5, eda=True)]
    assert [f is None for f in frames] == [True, False, False, False, False] and agent.counters.scored == 4
    x = preprocess("hr", wrist_windows(5, eda=True)[-1].data)
    model_input = fresh.model_input("hr", x, params)
    assert model_input.shape == (2 * x.size,) and np.array_equal(model_input[x.size :], x), (
        "relative, then levels"
    )
