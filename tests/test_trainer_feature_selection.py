"""Feature selection for speech: the features whose emotion effect holds in every training corpus, shipped as
the columns the model reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trainer.feature_selection import agreed_features, emotion_effect


def two_corpora(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature 0 carries the class in both corpora, feature 1 only in corpus "a" (strongly), feature 2 never."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(4), n // 4)
    corpora = np.repeat(["a", "b"], n // 2)
    x = rng.normal(size=(n, 3))
    x[:, 0] += 1.0 * y
    x[:, 1] += np.where(corpora == "a", 5.0 * y, 0.0)
    return x, y, corpora


def test_the_feature_every_corpus_agrees_on_wins_over_one_that_only_one_corpus_shows() -> None:
    x, y, corpora = two_corpora()
    assert agreed_features(x, y, corpora, 1 / 3).tolist() == [True, False, False]
    assert agreed_features(x, y, corpora, 2 / 3).sum() == 2
    # with corpus "a" alone, its strongest feature comes first
    a = corpora == "a"
    assert agreed_features(x[a], y[a], corpora[a], 1 / 3).tolist() == [False, True, False]


def test_emotion_effect_is_zero_where_undefined() -> None:
    x, y, _ = two_corpora()
    x[:, 2] = 3.0
    effect = emotion_effect(x, y)
    assert effect[2] == 0.0 and effect[0] > 10.0
    assert emotion_effect(x, np.zeros(len(y), int)).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    x, y, corpora = two_corpora()
    with pytest.raises(ValueError, match="feature share"):
        agreed_features(x, y, corpora, share)


def test_mismatched_or_empty_rows_are_refused() -> None:
    x, y, corpora = two_corpora()
    with pytest.raises(ValueError, match="do not match"):
        agreed_features(x, y[:-1], corpora, 0.5)
    with pytest.raises(ValueError, match="no training rows"):
        agreed_features(x[:0], y[:0], corpora[:0], 0.5)


def test_a_dropped_feature_does_not_move_the_exported_model(tmp_path: Path) -> None:
    """The choice rides in the ONNX graph: the edge feeds every feature, the dropped ones change nothing."""
    from trainer.export import export_onnx
    from trainer.recipes import SPEECH

    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 6373)).astype(np.float32)
    y = np.tile(np.arange(4), 64)
    x[:, :40] += y[:, None]
    keep = agreed_features(x, y, np.zeros(len(y), str), SPEECH.feature_share)
    assert keep.sum() == round(0.25 * 6373) and keep[:40].all()
    model = SPEECH.fit(x, y, np.zeros(len(y), str), seed=1, epochs=10)
    path = export_onnx(model, tmp_path / "speech.onnx", "functionals", x[:64])
    session = ort.InferenceSession(str(path))
    moved = x[:32].copy()
    moved[:, ~keep] += rng.normal(scale=100.0, size=(32, int((~keep).sum()))).astype(np.float32)
    before, after = (session.run(["probs"], {"functionals": v})[0] for v in (x[:32], moved))
    assert np.allclose(before, after, atol=1e-6)
    assert (before.argmax(1) == y[:32]).mean() > 0.9
