"""The speech model: one linear expert per training corpus on the speaker-relative functionals, mixed by a
corpus gate that reads the absolute functionals.

Corpora differ in studio, microphone, sentences, language and in how their speakers act; one linear model
for all of them settles on what they share and loses what each does best (trained on RAVDESS and CREMA-D
together, it scored unseen RAVDESS actors several points below a RAVDESS-only model). Each expert learns
its own corpus's emotion cues (its loss weighted towards its corpus, trainer.balance), and the gate, a
logistic regression from the absolute functionals (which carry the recording conditions that relative ones
remove) to the corpus, says how much each expert's answer counts for an utterance. A voice unlike any
training corpus gets a blend. One corpus: one expert, a gate that always answers 1.

Everything lives in one Keras graph with one input, the relative features followed by the absolute ones
(the wearer baseline's `levels`; without a baseline both halves are the absolute features themselves): the
edge runs it as any model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.balance import balanced_sample_weights
from trainer.feature_selection import agreed_features
from trainer.tf_setup import import_tf

# the gate's inverse L2 strength on standardised signed-log functionals: corpora are told apart by many
# small cues, and a strong penalty keeps the gate from hanging on a few of them
GATE_C = 0.01


def signed_log(x: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): functionals span orders of magnitude (energies, frequencies, slopes); on this
    scale a standardised linear gate is not driven by the few largest."""
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass(frozen=True)
class CorpusGate:
    """A multinomial logistic regression from absolute functionals to the training corpora: logits =
    ((signed_log(x) - mean) * scale) @ kernel + bias, one column per corpus in `corpora` order."""

    corpora: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray

    def probabilities(self, absolute: np.ndarray) -> np.ndarray:
        """Each row's weight of each corpus's expert (rows sum to 1)."""
        logits = ((signed_log(absolute) - self.mean) * self.scale) @ self.kernel + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def fit_gate(absolute: np.ndarray, corpora: np.ndarray, seed: int) -> CorpusGate:
    """The gate for the corpora present (sorted names); with one corpus a constant gate."""
    names = tuple(str(n) for n in np.unique(corpora))
    f = absolute.shape[1]
    z = signed_log(absolute)
    mean, std = z.mean(axis=0), z.std(axis=0)
    scale = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 0.0)
    if len(names) == 1:
        return CorpusGate(names, mean, scale, np.zeros((f, 1)), np.zeros(1))
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=GATE_C, max_iter=300, random_state=seed).fit((z - mean) * scale, corpora)
    if len(names) == 2:  # one logit for the second corpus against a fixed 0 for the first
        kernel = np.stack([np.zeros(f), lr.coef_[0]], axis=1)
        bias = np.array([0.0, lr.intercept_[0]])
    else:
        kernel, bias = lr.coef_.T, lr.intercept_
    return CorpusGate(names, mean, scale, kernel, bias)


def expert_weights(y: np.ndarray, corpora: np.ndarray, corpus: str, own_share: float) -> np.ndarray:
    """Sample weights of `corpus`'s expert: its corpus carries `own_share` of the loss, the others share the
    rest equally; classes balanced within each corpus (trainer.balance)."""
    names = [str(n) for n in np.unique(corpora)]
    if len(names) == 1:
        return balanced_sample_weights(y, corpora)
    rest = (1.0 - own_share) / (len(names) - 1)
    return balanced_sample_weights(y, corpora, {n: own_share if n == corpus else rest for n in names})


def _standardiser(x: np.ndarray, keep: np.ndarray, width: int, at: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale and offset over the model's whole input (`width` columns) standardising the kept columns of x,
    placed from column `at`, and zeroing every other column."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    scale = np.where(keep & (std > 1e-6), 1.0 / np.maximum(std, 1e-6), 0.0)
    full_scale, full_offset = np.zeros(width), np.zeros(width)
    full_scale[at : at + x.shape[1]] = scale
    full_offset[at : at + x.shape[1]] = -mean * scale
    return full_scale.astype("float32"), full_offset.astype("float32")


def build_gated_experts(
    x: np.ndarray,
    y: np.ndarray,
    corpora: np.ndarray,
    features: int,
    seed: int,
    input_name: str,
    n_classes: int,
    feature_share: float,
    l2: float,
):
    """(training model, deployed model) sharing their layers. Input rows: `features` relative functionals,
    then (when wider) the absolute ones; the gate reads the last `features` columns. The training model
    outputs every expert's probabilities (rows x experts x classes), to be fitted with one label and one
    weight per expert; the deployed model outputs the gate's mixture of them. Each expert standardises its
    features on its own corpus's rows and uses the `feature_share` with the strongest emotion effect there
    (trainer.feature_selection); the gate is fitted here and frozen."""
    import_tf(seed)
    import keras
    from keras import layers, ops

    if x.shape[1] not in (features, 2 * features):
        raise ValueError(f"speech rows of {x.shape[1]} features: expected {features} or {2 * features}")
    width = x.shape[1]
    relative, absolute = x[:, :features], x[:, -features:]
    gate = fit_gate(absolute, corpora, seed)

    class SignedLog(layers.Layer):
        def call(self, t):
            return ops.sign(t) * ops.log(1.0 + ops.abs(t))  # ONNX has no Log1p

    class Mixture(layers.Layer):
        def call(self, inputs):
            probs, weights = inputs
            return ops.sum(probs * ops.expand_dims(weights, -1), axis=1)

    inputs = keras.Input(shape=(width,), name=input_name)
    penalty = keras.regularizers.L2(l2)
    logits = []
    for i, name in enumerate(gate.corpora):
        own = np.asarray(corpora).astype(str) == name
        keep = agreed_features(relative[own], y[own], np.zeros(int(own.sum())), feature_share)
        scale, offset = _standardiser(relative[own], keep, width, 0)
        h = layers.Rescaling(scale, offset=offset, name=f"standardise_{i}")(inputs)
        logits.append(layers.Dense(n_classes, kernel_regularizer=penalty, name=f"expert_{i}")(h))
    stacked = layers.Reshape((len(logits), n_classes))(
        logits[0] if len(logits) == 1 else layers.Concatenate()(logits)
    )
    experts = layers.Softmax(axis=-1, name="experts")(stacked)
    gate_scale, gate_offset = np.zeros(width, "float32"), np.zeros(width, "float32")
    gate_scale[-features:] = gate.scale
    gate_offset[-features:] = -gate.mean * gate.scale
    g = layers.Rescaling(gate_scale, offset=gate_offset, name="gate_standardise")(SignedLog()(inputs))
    gate_dense = layers.Dense(len(gate.corpora), trainable=False, name="gate")
    weights = layers.Softmax(name="gate_weights")(gate_dense(g))
    kernel = np.zeros((width, len(gate.corpora)), "float32")
    kernel[-features:] = gate.kernel
    gate_dense.set_weights([kernel, gate.bias.astype("float32")])
    probs = Mixture(name="mixture")([experts, weights])
    training = keras.Model(inputs, experts, name="mmer_speech_experts")
    deployed = keras.Model(inputs, probs, name="mmer_speech")
    return training, deployed, gate


def train_speech_model(
    x: np.ndarray,
    y: np.ndarray,
    corpora: np.ndarray,
    features: int,
    epochs: int,
    seed: int,
    input_name: str,
    n_classes: int,
    own_share: float,
    feature_share: float,
    l2: float,
    batch: int,
    steps_per_execution: int,
):
    """The deployed speech model (trainer.speech_model), its experts fitted together in one run of `epochs`
    (no early stopping: on speech, validation loss of a few held-out speakers stops training at noise), each
    on its own sample weights (expert_weights)."""
    import keras

    training, deployed, gate = build_gated_experts(
        x, y, corpora, features, seed, input_name, n_classes, feature_share, l2
    )
    corpora = np.asarray(corpora).astype(str)
    weights = np.stack([expert_weights(y, corpora, name, own_share) for name in gate.corpora], axis=1)
    training.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
    )
    labels = np.repeat(np.asarray(y)[:, None], len(gate.corpora), axis=1)
    training.fit(
        x,
        labels,
        sample_weight=weights.astype("float32"),
        epochs=epochs,
        batch_size=batch,
        verbose=0,
        shuffle=True,
    )
    return deployed
