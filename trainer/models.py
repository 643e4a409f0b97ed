"""One small Keras model per modality, sized for an edge NPU (tens to a few hundred thousand weights).

The input normalisation is a Keras ``Normalization`` layer adapted on the training windows, so the exported
ONNX model takes exactly what the shared preprocessing produces and nothing outside the model needs the
training statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from trainer.tfsetup import keras_module


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs; defaults are sized for the synthetic set on a 2-core CPU."""

    epochs: int = 40
    batch_size: int = 64
    patience: int = 5
    learning_rate: float = 2e-3
    seed: int = 0
    verbose: int = 0


@dataclass
class TrainResult:
    model: object
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    validation_accuracy: float = 0.0


def architecture_for(input_shape: Sequence[int]) -> str:
    """Dense network for feature vectors (hr, eeg), 2-D CNN for spectrograms and images."""
    rank = len(input_shape)
    if rank == 1:
        return "dense"
    if rank in (2, 3):
        return "conv2d"
    raise ValueError(f"model: unsupported input rank {rank} for shape {tuple(input_shape)}")


def _standardiser(keras: object, train_x: np.ndarray, per_feature: bool) -> object:
    """Input standardisation adapted on the training windows, stored as frozen weights.

    Keras' own ``Normalization`` layer keeps its statistics as captured tensors, which the ONNX exporter
    turns into extra graph inputs; frozen weights become initializers, so the model has one input.
    """
    data = train_x.astype(np.float64)
    if per_feature:
        mean, std = data.mean(axis=0), data.std(axis=0)
    else:
        mean, std = np.array([data.mean()]), np.array([data.std()])
    inv_std = 1.0 / np.maximum(std, 1e-6)

    class Standardise(keras.layers.Layer):
        def build(self, input_shape: object) -> None:
            self.mean = self.add_weight(
                shape=mean.shape, initializer=keras.initializers.Constant(mean), trainable=False, name="mean"
            )
            self.inv_std = self.add_weight(
                shape=inv_std.shape,
                initializer=keras.initializers.Constant(inv_std),
                trainable=False,
                name="inv_std",
            )

        def call(self, inputs: object) -> object:
            return (inputs - self.mean) * self.inv_std

    return Standardise(name="standardise")


def build_model(
    input_shape: Sequence[int],
    n_classes: int,
    train_x: np.ndarray,
    input_name: str = "input",
    seed: int = 0,
) -> object:
    """Build and compile the modality's model with its normalisation adapted on ``train_x``."""
    if n_classes < 2:
        raise ValueError(f"model: need at least 2 classes, got {n_classes}")
    if tuple(train_x.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"model: training data shape {train_x.shape[1:]} != input shape {tuple(input_shape)}"
        )
    keras = keras_module()
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(shape=tuple(input_shape), name=input_name, dtype="float32")
    kind = architecture_for(input_shape)
    if kind == "dense":
        x = _standardiser(keras, train_x, per_feature=True)(inputs)
        x = layers.Dense(128, activation="relu")(x)
        x = layers.Dropout(0.2, seed=seed)(x)
        x = layers.Dense(64, activation="relu")(x)
    else:
        x = inputs
        if len(input_shape) == 2:
            x = layers.Reshape((*input_shape, 1))(x)
        # One global mean/variance: per-pixel statistics would make the model depend on frame alignment.
        x = _standardiser(keras, train_x, per_feature=False)(x)
        for filters in (16, 32, 64):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dropout(0.2, seed=seed)(x)
        x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name=f"mmer_{kind}")
    return model


def train_model(
    model: object,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    config: TrainConfig = TrainConfig(),
) -> TrainResult:
    """Fit with early stopping on the validation split, restoring the best epoch's weights."""
    keras = keras_module()
    keras.utils.set_random_seed(config.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=config.patience, restore_best_weights=True, mode="max"
    )
    hist = model.fit(
        train[0].astype(np.float32),
        train[1].astype(np.int64),
        validation_data=(val[0].astype(np.float32), val[1].astype(np.int64)),
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=[stop],
        verbose=config.verbose,
        shuffle=True,
    )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    val_acc = max(history.get("val_accuracy", [0.0]))
    return TrainResult(model, history, len(history.get("loss", [])), val_acc)


def predict(model: object, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K) from the Keras model."""
    return np.asarray(model.predict(x.astype(np.float32), batch_size=batch_size, verbose=0))
