"""The per-wearer feature baseline: exact running statistics, forgetting, manifest params, and the trainer's
vectorised form agreeing row for row with what the edge computes."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.wearer_baselines import Calibrating, WearerBaselines
from mmer_core.wearer_baseline import (
    HORIZON_PARAM,
    WARMUP_PARAM,
    WearerBaseline,
    relative_to_wearers,
    requested,
)
from trainer.data import SyntheticPlan, synthetic
from trainer.data import relative_to_wearers as relative_dataset


def test_statistics_are_exact_until_the_horizon() -> None:
    x = np.random.default_rng(0).normal([70, 40, 1], [8, 15, 0.5], (200, 3))
    b = WearerBaseline(3, horizon=500)
    for row in x:
        b.update(row)
    assert b.n == 200
    np.testing.assert_allclose(b.mean, x.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(b.var, x.var(axis=0), rtol=1e-9)
    np.testing.assert_allclose(b.standardise(x[7]), (x[7] - x.mean(0)) / x.std(0), rtol=1e-5)


def test_past_the_horizon_the_baseline_follows_a_new_level() -> None:
    b = WearerBaseline(1, horizon=50)
    for _ in range(1000):
        b.update(np.array([60.0]))
    for _ in range(250):  # five horizons at a new resting level
        b.update(np.array([80.0]))
    assert b.mean[0] == pytest.approx(80.0, abs=20 * np.exp(-5) + 1e-9)
    exact = WearerBaseline(1, horizon=10**9)
    for v in [60.0] * 1000 + [80.0] * 250:
        exact.update(np.array([v]))
    assert exact.mean[0] == pytest.approx(64.0), "without forgetting the old level dominates"


def test_a_feature_constant_for_this_wearer_is_only_moved() -> None:
    b = WearerBaseline(2)
    for v in (1.0, 2.0, 3.0):
        b.update(np.array([v, 5.0]))
    z = b.standardise(np.array([3.0, 6.0]))
    assert z[0] == pytest.approx(1.0 / np.std([1, 2, 3])) and z[1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([1.0, np.nan]), "non-finite"),
        (np.array([1.0, 2.0, 3.0]), "shape"),
        (np.ones((1, 2)), "shape"),
    ],
)
def test_bad_feature_vectors_are_refused_and_leave_the_statistics_alone(bad, message) -> None:
    b = WearerBaseline(2)
    b.update(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=message):
        b.update(bad)
    assert b.n == 1 and np.all(np.isfinite(b.mean)) and np.all(np.isfinite(b.var))


def test_state_round_trips_and_malformed_state_is_refused() -> None:
    b = WearerBaseline(2, horizon=30)
    for row in np.random.default_rng(1).normal(size=(40, 2)):
        b.update(row)
    again = WearerBaseline.from_json(b.to_json())
    assert again.n == 40 and again.horizon == 30
    np.testing.assert_array_equal(again.mean, b.mean)
    for broken in (
        {**b.to_json(), "mean": [1.0]},
        {**b.to_json(), "var": [-1.0, 1.0]},
        {**b.to_json(), "n": -3},
        {**b.to_json(), "horizon": 0},
        {**b.to_json(), "mean": [float("nan"), 0.0]},
        {k: v for k, v in b.to_json().items() if k != "var"},
    ):
        with pytest.raises(ValueError, match="wearer baseline"):
            WearerBaseline.from_json(broken)


def test_manifest_params_ask_for_a_baseline_or_are_refused() -> None:
    assert requested({}) is None and requested({WARMUP_PARAM: 0}) is None
    assert requested({WARMUP_PARAM: 60}) == (60, 3600)
    assert requested({WARMUP_PARAM: 60, HORIZON_PARAM: 600}) == (60, 600)
    for bad in (
        {WARMUP_PARAM: -1},
        {WARMUP_PARAM: 2.5},
        {WARMUP_PARAM: float("nan")},
        {WARMUP_PARAM: 60, HORIZON_PARAM: 0},
        {WARMUP_PARAM: 60, HORIZON_PARAM: float("inf")},
    ):
        with pytest.raises(ValueError, match="wearer_baseline"):
            requested(bad)


def test_the_trainer_sees_what_the_edge_computes_row_for_row() -> None:
    """The trainer standardises whole arrays; the edge one window at a time as they come. Both must give
    the model the same numbers, or the model is trained on inputs it never gets."""
    data = synthetic("hr", SyntheticPlan(n_subjects=3, seconds=150.0, seed=3))
    warmup = 5
    z, scored = relative_to_wearers(data.x, data.subjects, warmup, horizon=20)
    params = {WARMUP_PARAM: warmup, HORIZON_PARAM: 20}
    for subject in np.unique(data.subjects):
        edge = WearerBaselines(None, subject)
        edge.stats["hr"] = WearerBaseline(data.x.shape[1], horizon=20)
        rows = np.flatnonzero(data.subjects == subject)
        for i, row in enumerate(rows):
            edge.observe("hr", data.x[row])
            if i < warmup - 1:
                assert not scored[row]
                with pytest.raises(Calibrating, match=f"{i + 1} of {warmup}"):
                    edge.model_input("hr", data.x[row], params)
            else:
                assert scored[row]
                np.testing.assert_allclose(edge.model_input("hr", data.x[row], params), z[row], rtol=1e-6)
    relative, kept = relative_dataset(data, warmup, horizon=20)
    assert len(relative) == len(data) - 3 * (warmup - 1) and relative.x.dtype == np.float32
    np.testing.assert_array_equal(kept, scored)
    np.testing.assert_array_equal(relative.x, z[scored])
    assert np.array_equal(relative.y, data.y[scored]) and np.array_equal(relative.t_end, data.t_end[scored])


def test_images_and_spectrograms_have_no_baseline() -> None:
    with pytest.raises(ValueError, match="feature vectors"):
        relative_to_wearers(np.zeros((4, 48, 48, 1)), np.array(["a"] * 4), 2)
    edge = WearerBaselines(None, "s1")
    edge.observe("image", np.zeros((48, 48, 1)))
    assert "image" not in edge.stats
