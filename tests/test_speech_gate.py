"""The speech model: per-corpus experts on relative features mixed by a corpus gate on absolute ones, in one
graph that the edge runs as any model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trainer.balance import balanced_sample_weights
from trainer.speech_model import expert_weights, fit_gate, train_speech_model

FEATURES = 8


def corpora_that_disagree(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of FEATURES relative then FEATURES absolute features. Class c raises relative feature c in
    corpus "a" but feature (c + 1) % 4 in corpus "b", so no single linear model gets both right; the corpora
    differ in their absolute levels (a studio's or a microphone's), which a gate can read."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(4), n // 4)
    corpora = np.repeat(np.array(["a", "b"]), n // 2)
    relative = rng.normal(size=(n, FEATURES))
    column = np.where(corpora == "a", y, (y + 1) % 4)
    relative[np.arange(n), column] += 4.0
    levels = np.where(corpora == "a", 50.0, 400.0)[:, None] * rng.uniform(0.8, 1.2, size=(n, FEATURES))
    return np.concatenate([relative, levels], axis=1).astype(np.float32), y, corpora


def train(x: np.ndarray, y: np.ndarray, corpora: np.ndarray, own_share: float = 1.0):
    return train_speech_model(x, y, corpora, FEATURES, 30, 1, "functionals", 4, own_share, 0.5, 1e-3, 64, 8)


def gate_of(model, x: np.ndarray) -> np.ndarray:
    import keras

    return keras.Model(model.inputs, model.get_layer("gate_weights").output).predict(x, verbose=0)


@pytest.mark.slow
def test_the_gate_routes_each_corpus_to_its_own_expert_inside_the_int8_graph(tmp_path: Path) -> None:
    from trainer.export import export_onnx
    from trainer.quantize import quantize

    x, y, corpora = corpora_that_disagree()
    model = train(x, y, corpora)
    weights = gate_of(model, x)
    assert weights.shape == (len(x), 2), "one weight per corpus, corpora in sorted order"
    assert (weights[corpora == "a", 0] > 0.8).all() and (weights[corpora == "b", 1] > 0.8).all()
    fp32 = export_onnx(model, tmp_path / "speech.onnx", "functionals", x[:64])
    int8 = quantize(fp32, tmp_path / "speech.int8.onnx", "max", x[::3])
    session = ort.InferenceSession(str(int8))
    assert session.get_inputs()[0].shape[1] == 2 * FEATURES, "relative features followed by absolute ones"
    probs = session.run(["probs"], {"functionals": x})[0]
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    for name in ("a", "b"):
        accuracy = (probs[corpora == name].argmax(axis=1) == y[corpora == name]).mean()
        assert accuracy > 0.9, f"corpus {name}: {accuracy:.2f}"


@pytest.mark.slow
def test_one_shared_expert_cannot_serve_corpora_that_disagree() -> None:
    """The same data with every expert trained on both corpora alike: the gate's choice no longer matters
    and each corpus loses what the other contradicts (the case the experts are for)."""
    x, y, corpora = corpora_that_disagree()
    probs = train(x, y, corpora, own_share=0.5).predict(x, verbose=0)
    assert (probs.argmax(axis=1) == y).mean() < 0.8


@pytest.mark.slow
def test_one_corpus_trains_one_expert_and_no_gate() -> None:
    x, y, corpora = corpora_that_disagree()
    own = corpora == "a"
    model = train(x[own], y[own], corpora[own])
    assert not any(layer.name.startswith("gate") for layer in model.layers), "a gate of one weighs nothing"
    assert (model.predict(x[own], verbose=0).argmax(axis=1) == y[own]).mean() > 0.9


@pytest.mark.slow
def test_absolute_features_only_also_train() -> None:
    """Without a wearer baseline the rows are the absolute features alone: experts and gate read the same."""
    x, y, corpora = corpora_that_disagree()
    model = train(x[:, FEATURES:] + x[:, :FEATURES], y, corpora)
    assert model.inputs[0].shape[1] == FEATURES


def test_rows_of_the_wrong_width_are_refused() -> None:
    x, y, corpora = corpora_that_disagree(n=40)
    with pytest.raises(ValueError, match="speech rows of 15 features: expected 8 or 16"):
        train(x[:, :15], y, corpora)


def test_the_gate_tells_corpora_apart_from_their_levels_alone() -> None:
    x, _, corpora = corpora_that_disagree()
    gate = fit_gate(x[:, FEATURES:], corpora, seed=1)
    assert gate.corpora == ("a", "b")
    p = gate.probabilities(x[:, FEATURES:])
    assert np.allclose(p.sum(axis=1), 1.0)
    assert (p.argmax(axis=1) == (corpora == "b")).mean() == 1.0
    alone = fit_gate(x[corpora == "a", FEATURES:], corpora[corpora == "a"], seed=1)
    assert np.allclose(alone.probabilities(x[:, FEATURES:]), 1.0)


def test_an_expert_weighs_its_own_corpus_by_its_share() -> None:
    y = np.array([0, 0, 1, 2, 3, 0, 1, 1, 1])
    corpora = np.array(["a"] * 5 + ["b"] * 4)
    w = expert_weights(y, corpora, "a", 0.8)
    assert w.mean() == pytest.approx(1.0)
    assert w[corpora == "a"].sum() / w.sum() == pytest.approx(0.8)
    assert w[:2].sum() == pytest.approx(w[2]), "classes balanced within a corpus"
    assert np.allclose(expert_weights(y, corpora, "b", 0.5), balanced_sample_weights(y, corpora))
    assert np.allclose(
        expert_weights(y[:5], corpora[:5], "a", 0.8), balanced_sample_weights(y[:5], corpora[:5])
    )


@pytest.mark.parametrize(
    "shares", [{"a": 0.5}, {"a": 0.7, "b": 0.7}, {"a": 1.2, "b": -0.2}], ids=["missing", "over", "negative"]
)
def test_corpus_shares_that_do_not_fit_are_refused(shares: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="corpus shares"):
        balanced_sample_weights(np.array([0, 1, 0]), np.array(["a", "a", "b"]), shares)


@pytest.mark.slow
def test_a_corpus_expert_is_the_same_whatever_corpora_join_it() -> None:
    """Adding a corpus adds an expert and a gate; the expert of a corpus already there does not move."""
    import keras

    x, y, corpora = corpora_that_disagree()
    b = corpora == "b"
    alone = train(x[b], y[b], corpora[b]).predict(x[b], verbose=0)
    joined = train(x, y, corpora)
    experts = keras.Model(joined.inputs, joined.get_layer("experts").output).predict(x[b], verbose=0)
    np.testing.assert_allclose(experts[:, 1], alone, atol=1e-6)
