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


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale and offset standardising x's columns (constant columns: scale 0, they carry nothing)."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    scale = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 0.0)
    return scale.astype("float32"), (-mean * scale).astype("float32")


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
    """(one training model per expert, deployed model, gate), all sharing their layers. Input rows:
    `features` relative functionals, then (when wider) the absolute ones; the gate reads the last `features`
    columns. Each training model outputs its expert's probabilities; the deployed model outputs the gate's
    mixture of them (with one corpus: its expert). Each expert standardises its
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

    class Columns(layers.Layer):
        """The input columns a part of the model reads (an ONNX Gather): the rest cost nothing."""

        def __init__(self, columns: np.ndarray, **kwargs) -> None:
            super().__init__(**kwargs)
            self.columns = np.asarray(columns, "int32")

        def call(self, t):
            return ops.take(t, self.columns, axis=1)

    class SignedLog(layers.Layer):
        def call(self, t):
            return ops.sign(t) * ops.log(1.0 + ops.abs(t))  # ONNX has no Log1p

    class LastColumns(layers.Layer):
        """The absolute features at the end of the input (an ONNX Slice)."""

        def call(self, t):
            return t[:, width - features :]

    class Mixture(layers.Layer):
        def call(self, inputs):
            probs, weights = inputs
            return ops.sum(probs * ops.expand_dims(weights, -1), axis=1)

    inputs = keras.Input(shape=(width,), name=input_name)
    penalty = keras.regularizers.L2(l2)
    logits = []
    for i, name in enumerate(gate.corpora):
        own = np.asarray(corpora).astype(str) == name
        kept = np.flatnonzero(agreed_features(relative[own], y[own], np.zeros(int(own.sum())), feature_share))
        scale, offset = _standardiser(relative[own][:, kept])
        h = Columns(kept, name=f"features_{i}")(inputs)
        h = layers.Rescaling(scale, offset=offset, name=f"standardise_{i}")(h)
        # every expert starts from the seed alone: a corpus's expert is the same whatever corpora join it
        start = keras.initializers.GlorotUniform(seed=seed)
        logits.append(
            layers.Dense(n_classes, kernel_initializer=start, kernel_regularizer=penalty, name=f"expert_{i}")(
                h
            )
        )
    training = [
        keras.Model(inputs, layers.Softmax()(z), name=f"mmer_speech_expert_{i}") for i, z in enumerate(logits)
    ]
    if len(logits) == 1:  # one corpus: its expert, nothing to weigh
        return training, training[0], gate
    experts = layers.Softmax(axis=-1, name="experts")(
        layers.Reshape((len(logits), n_classes))(layers.Concatenate()(logits))
    )
    g = SignedLog()(LastColumns(name="gate_features")(inputs))
    g = layers.Rescaling(
        gate.scale.astype("float32"),
        offset=(-gate.mean * gate.scale).astype("float32"),
        name="gate_standardise",
    )(g)
    gate_dense = layers.Dense(len(gate.corpora), trainable=False, name="gate")
    weights = layers.Softmax(name="gate_weights")(gate_dense(g))
    gate_dense.set_weights([gate.kernel.astype("float32"), gate.bias.astype("float32")])
    probs = Mixture(name="mixture")([experts, weights])
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
    """The deployed speech model: each expert fitted for `epochs` (no early stopping: on speech, validation
    loss of a few held-out speakers stops training at noise) on the rows its weights (expert_weights) count,
    then the gate's mixture of them."""
    import keras

    training, deployed, gate = build_gated_experts(
        x, y, corpora, features, seed, input_name, n_classes, feature_share, l2
    )
    corpora = np.asarray(corpora).astype(str)
    for name, expert in zip(gate.corpora, training, strict=True):
        weights = expert_weights(y, corpora, name, own_share)
        rows = weights > 0
        keras.utils.set_random_seed(seed)  # the same batches for the same rows, whatever came before
        expert.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            steps_per_execution=steps_per_execution,
        )
        expert.fit(
            x[rows],
            y[rows],
            sample_weight=(weights[rows] / weights[rows].mean()).astype("float32"),
            epochs=epochs,
            batch_size=batch,
            verbose=0,
            shuffle=True,
        )
    return deployed
