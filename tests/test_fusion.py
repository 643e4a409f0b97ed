"""Fusion rules against hand-computed numbers, with missing modalities and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mmer_core.fusion import Smoother, check_label_sets, fit_weights, fuse, fuse_row, fuse_stack

A = np.array([0.7, 0.1, 0.1, 0.1])
B = np.array([0.1, 0.6, 0.2, 0.1])
C = np.array([0.25, 0.25, 0.25, 0.25])


def test_weighted_mean_by_hand() -> None:
    out = fuse({"hr": A, "eeg": B}, "weighted_mean", {"hr": 3.0, "eeg": 1.0})
    assert np.allclose(out.probs, 0.75 * A + 0.25 * B)
    assert out.weights == pytest.approx({"hr": 0.75, "eeg": 0.25})


def test_product_rule_in_log_space_by_hand() -> None:
    out = fuse({"hr": A, "eeg": B}, "product")
    expected = np.sqrt(A * B) / np.sqrt(A * B).sum()
    assert np.allclose(out.probs, expected)


def test_max_rule_by_hand() -> None:
    out = fuse({"hr": A, "eeg": B}, "max")
    expected = np.maximum(A, B) / np.maximum(A, B).sum()
    assert np.allclose(out.probs, expected)


def test_majority_vote_by_hand() -> None:
    d = np.array([0.1, 0.5, 0.3, 0.1])
    out = fuse({"hr": A, "eeg": B, "speech": d}, "vote")
    assert out.probs.argmax() == 1, "two of three modalities vote angry"
    assert out.probs[1] == pytest.approx(2 / 3, abs=0.01)


def test_confidence_weighting_by_hand() -> None:
    out = fuse({"hr": A, "image": C}, "confidence")
    h = -(A * np.log(A)).sum() / np.log(4)
    assert out.weights["image"] == pytest.approx(0.0, abs=1e-4), "a uniform score carries no confidence"
    assert out.weights["hr"] == pytest.approx(1.0, abs=1e-4)
    assert np.allclose(out.probs, A, atol=1e-4)
    assert 0 < 1 - h < 1


def test_missing_modalities_renormalise_the_rest() -> None:
    weights = {"hr": 1.0, "eeg": 1.0, "speech": 2.0}
    out = fuse({"hr": A, "speech": B}, "weighted_mean", weights)
    assert out.weights == pytest.approx({"hr": 1 / 3, "speech": 2 / 3})
    assert np.allclose(out.probs, A / 3 + 2 * B / 3)
    single = fuse({"eeg": B}, "product")
    assert np.allclose(single.probs, B)


def test_batches_fuse_row_by_row() -> None:
    out = fuse({"hr": np.stack([A, B]), "eeg": np.stack([B, A])}, "weighted_mean")
    assert out.probs.shape == (2, 4)
    assert np.allclose(out.probs.sum(axis=1), 1.0)
    assert np.allclose(out.probs[0], (A + B) / 2)


@pytest.mark.parametrize(
    ("scores", "strategy", "weights", "message"),
    [
        ({}, "weighted_mean", None, "no modality"),
        ({"hr": A}, "median", None, "unknown strategy"),
        ({"hr": np.array([np.nan, 0.5, 0.5, 0.0])}, "product", None, "finite"),
        ({"hr": A}, "weighted_mean", {"hr": -1.0}, "non-negative"),
    ],
)
def test_bad_input_is_refused(scores, strategy, weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        fuse(scores, strategy, weights)


def test_different_label_sets_are_refused() -> None:
    assert check_label_sets({"hr": ("a", "b"), "eeg": ("a", "b")}) == ("a", "b")
    with pytest.raises(ValueError, match="eeg scores labels"):
        check_label_sets({"hr": ("a", "b"), "eeg": ("b", "a")})


def test_smoothing_blends_history() -> None:
    s = Smoother(0.5)
    assert np.allclose(s.update("x", A), A)
    assert np.allclose(s.update("x", B), 0.5 * A + 0.5 * B)
    assert np.allclose(Smoother(0.0).update("x", B), B)
    with pytest.raises(ValueError, match="alpha"):
        Smoother(1.0)


def test_weights_fit_on_validation_accuracy() -> None:
    labels = np.array([0, 1, 0, 1])
    good = np.array([[0.9, 0.1, 0, 0], [0.1, 0.9, 0, 0], [0.8, 0.2, 0, 0], [0.2, 0.8, 0, 0]])
    poor = np.array([[0.1, 0.9, 0, 0], [0.9, 0.1, 0, 0], [0.8, 0.2, 0, 0], [0.2, 0.8, 0, 0]])
    w = fit_weights({"hr": good, "eeg": poor}, labels)
    assert w["hr"] > w["eeg"] > 0


@pytest.mark.parametrize("strategy", ["weighted_mean", "product", "max", "vote", "confidence"])
def test_rows_with_different_modalities_fuse_at_once_as_they_fuse_alone(strategy: str) -> None:
    """The coordinator fuses many windows in one call, each with the modalities it has (an absent one
    weighs 0): the result is each window fused on its own, whatever its placeholder scores."""
    rng = np.random.default_rng(7)
    modalities = ["eeg", "hr", "image", "speech"]
    stack = rng.dirichlet(np.full(4, 0.7), size=(4, 200))  # (M, N, K), absent rows hold noise
    weights = np.zeros((4, 200))
    for row in range(200):
        present = [i for i in range(4) if rng.random() < 0.7] or [1]
        weights[present, row] = rng.choice([0.0, 0.5, 2.0], size=len(present))
        if weights[:, row].sum() == 0:
            weights[present[0], row] = 1.0
    fused, normalised = fuse_stack(stack, weights, strategy)
    for row in range(200):
        here = {modalities[i]: stack[i, row] for i in range(4) if weights[i, row] > 0}
        want = fuse(here, strategy, {modalities[i]: weights[i, row] for i in range(4) if weights[i, row] > 0})
        assert np.allclose(fused[row], want.probs, atol=1e-12)
        got = {modalities[i]: normalised[i, row] for i in range(4) if weights[i, row] > 0}
        assert got == pytest.approx(want.weights, abs=1e-12)
        assert normalised[weights[:, row] == 0, row].sum() == 0


def test_fuse_row_is_fuse_of_one_row() -> None:
    probs, weights = fuse_row({"hr": A.tolist(), "eeg": B.tolist()}, "weighted_mean", {"hr": 3.0, "eeg": 1.0})
    assert probs == pytest.approx((0.75 * A + 0.25 * B).tolist())
    assert weights == pytest.approx({"hr": 0.75, "eeg": 0.25})


def test_fuse_row_refuses_what_fuse_refuses() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        fuse_row({"hr": [1.0, 0.0]}, "median")
    with pytest.raises(ValueError, match="no modality"):
        fuse_row({})
    with pytest.raises(ValueError, match="finite"):
        fuse_row({"hr": [float("nan"), 1.0]})
    with pytest.raises(ValueError, match="same number of labels"):
        fuse_row({"hr": [0.5, 0.5], "eeg": [0.2, 0.3, 0.5]})
    with pytest.raises(ValueError, match="not all zero"):
        fuse_row({"hr": [0.5, 0.5]}, weights={"hr": 0.0})
