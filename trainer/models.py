"""One small Keras model per modality, sized for an edge NPU (tens of thousands of weights).

Feature standardisation is a fixed Rescaling layer computed from the training
data, so it travels inside the exported model (as constants, which the ONNX
export folds) and the edge needs no extra file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mmer_core.modalities import get_spec
from trainer.tf_setup import import_tf

if TYPE_CHECKING:
    from trainer.data import Dataset

BATCH = 64
STEPS_PER_EXECUTION = 32


def build_model(
    modality: str,
    n_classes: int,
    x_train: np.ndarray,
    seed: int,
    widths: tuple[int, ...] | None = None,
    l2: float = 0.0,
    clip: float | None = None,
    name: str | None = None,
):
    """The modality's architecture (named `name`, or mmer_<modality>), standardising its input with x_train's
    mean and spread (then limited to +-clip standard deviations when clip is given, so one wild window cannot
    swing the model). Feature vectors go through dense layers of `widths` (the modality's default when None;
    empty: a multinomial logistic regression), with an L2 penalty. Speech has its own model (trainer.speech_model)."""
    import_tf(seed)
    import keras
    from keras import layers

    spec = get_spec(modality)
    inputs = keras.Input(shape=x_train.shape[1:], name=spec.input_name)  # the spec's, or wider (levels)
    axis = 0 if len(spec.input_shape) == 1 else None
    mean = x_train.mean(axis=axis)
    std = x_train.std(axis=axis)
    scale = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 1.0)  # constant features pass through
    x = layers.Rescaling(
        scale=scale.astype("float32"), offset=(-mean * scale).astype("float32"), name="standardise"
    )(inputs)
    if clip is not None:  # clip(x, -c, c) = relu(x + c, max 2c) - c, in layers every exporter knows
        x = layers.ReLU(max_value=2 * clip)(layers.Rescaling(1.0, offset=clip)(x))
        x = layers.Rescaling(1.0, offset=-clip)(x)
    penalty = keras.regularizers.L2(l2) if l2 > 0 else None
    if len(spec.input_shape) == 1:
        # EEG band features of unseen people: a narrower, more dropped-out net generalised better (generated
        # DEAP-layout recordings, 4 folds by subject: 0.720 vs 0.709 accuracy at width 256)
        first_dropout = 0.5 if modality == "eeg" else 0.3
        if widths is None:
            widths = (64, 32) if modality == "eeg" else (256, 128)
        for i, width in enumerate(widths):
            x = layers.Dense(width, activation="relu", kernel_regularizer=penalty)(x)
            x = layers.Dropout(first_dropout if i == 0 else 0.2, seed=seed)(x)
    else:
        for i, filters in enumerate((24, 48, 96)):
            # the first layer halves a spectrogram (4x less compute for the rest); a face crop keeps its full
            # resolution: a mouth's curve or a brow's tilt is a pixel or two at 48x48 (halving cost 8 points
            # on generated faces, folds by person)
            strides = 1 if modality == "image" or i > 0 else 2
            x = layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D(2)(x)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dropout(0.3, seed=seed)(x)
        x = layers.Dense(64, activation="relu")(x)

    class ClassMask(layers.Layer):
        """A fixed offset per class added to the logits: 0, or far below any logit for a class no training
        window had (never_predict_absent_classes). It sits after the logits so that their int8 range stays
        that of the classes the model answers."""

        def build(self, input_shape) -> None:
            self.offset = self.add_weight(
                shape=(input_shape[-1],), initializer="zeros", trainable=False, name="offset"
            )

        def call(self, t):
            return t + self.offset

    logits = layers.Dense(n_classes, name="logits", kernel_regularizer=penalty)(x)
    outputs = layers.Softmax(name="probs")(ClassMask(name="class_mask")(logits))
    model = keras.Model(inputs, outputs, name=name or f"mmer_{modality}")
    # many batches per graph call: the same updates in the same order, without a Python round trip per batch,
    # which costs more than a small model's step itself
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return model


def balanced_class_weights(y: np.ndarray) -> dict[int, float]:
    """Weights inversely proportional to class frequency (mean weight 1 per window), classes present only.

    Real affective data is imbalanced (RAVDESS quadrants 40 % angry, E4 68 %
    baseline): unweighted, a small model learns the prior and its macro-F1
    stays near a majority guess.
    """
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): float(len(y) / (len(classes) * n)) for c, n in zip(classes, counts, strict=True)}


def fit(
    model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    epochs: int,
    seed: int,
    log=print,
    class_weight: dict[int, float] | None = None,
    sample_weight: np.ndarray | None = None,
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
) -> dict[str, float]:
    """Train with early stopping on validation loss, keeping the best weights, or without validation rows
    (x_val None) for exactly `epochs` epochs; sample_weight weighs each training row's loss (trainer.balance);
    with `augment` (trainer.augment.augment_faces) every batch is a fresh random variant of its training windows.
    Classes absent from y_train are never predicted (never_predict_absent_classes)."""
    import keras

    import_tf(seed)
    train = None if augment is None else _augmented_batches(x_train, y_train, augment, seed, sample_weight)

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            val = f"  val_acc {logs['val_accuracy']:.3f}" if "val_accuracy" in logs else ""
            log(
                f"    epoch {epoch + 1:3d}  loss {logs.get('loss', 0):.3f}  acc {logs.get('accuracy', 0):.3f}{val}"
            )

    # fresh random variants every batch make a slower start: a model that sees them may sit near chance for
    # ten epochs before it learns, so it gets longer before its validation loss may stop the run
    patience, start = (20, 10) if augment is not None else (10, 0)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True, start_from_epoch=start
    )
    callbacks = [Progress()] if x_val is None else [stop, Progress()]
    validation = None if x_val is None else (x_val, y_val)
    if augment is None:
        history = model.fit(
            x_train,
            y_train,
            validation_data=validation,
            epochs=epochs,
            batch_size=BATCH,
            callbacks=callbacks,
            verbose=0,
            shuffle=True,
            class_weight=class_weight,
            sample_weight=sample_weight,
        )
    else:
        history = model.fit(train, validation_data=validation, epochs=epochs, callbacks=callbacks, verbose=0)
    never_predict_absent_classes(model, np.unique(y_train))
    trained = len(history.history["loss"])
    if x_val is None:
        return {"epochs": trained, "best_epoch": trained}
    best = int(np.argmin(history.history["val_loss"]))
    return {
        "epochs": trained,
        "best_epoch": best + 1,
        "val_accuracy": float(history.history["val_accuracy"][best]),
    }


def train_on(
    modality: str,
    train: Dataset,
    val: Dataset | None,
    epochs: int,
    seed: int,
    log,
    sample_weight: np.ndarray | None = None,
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
):
    """The modality's model (build_model) fitted on `train`: stopped early on `val`'s loss, or for exactly
    `epochs` epochs without `val`; returns it and what the training did (fit)."""
    model = build_model(modality, len(train.taxonomy), train.x, seed)
    log(
        f"[{modality}] training ({model.count_params()} weights, {'up to ' if val is not None else ''}{epochs} epochs)"
    )
    info = fit(
        model,
        train.x,
        train.y,
        None if val is None else val.x,
        None if val is None else val.y,
        epochs,
        seed,
        log,
        sample_weight=sample_weight,
        augment=augment,
    )
    return model, info


def never_predict_absent_classes(model, present: np.ndarray, logit: float = -100.0) -> None:
    """Classes no training window had (stress data: only calm and angry) get a logit of 0 (zero weights and
    bias) and a class mask far below any logit. Their weights were only ever pushed down on the training
    inputs, so on an unusual window they could still win: a model must not answer with a class it never
    learnt."""
    layer = model.get_layer("logits")
    weights, bias = layer.get_weights()
    absent = np.setdiff1d(np.arange(bias.shape[0]), present)
    weights[:, absent] = 0.0
    bias[absent] = 0.0
    layer.set_weights([weights, bias])
    offset = np.zeros_like(bias)
    offset[absent] = logit
    model.get_layer("class_mask").set_weights([offset])


def _augmented_batches(x, y, augment, seed, sample_weight):
    """A keras PyDataset of shuffled batches, each augmented afresh (with their rows' weights, if any)."""
    import keras

    class Augmented(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))
            self.weights = None if sample_weight is None else np.asarray(sample_weight, np.float32)

        def __len__(self) -> int:
            return int(np.ceil(len(x) / BATCH))

        def __getitem__(self, i: int):
            rows = self.order[i * BATCH : (i + 1) * BATCH]
            batch = (augment(x[rows], self.rng), y[rows])
            return batch if self.weights is None else (*batch, self.weights[rows])

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(x))

    return Augmented()


def count_weights(model) -> int:
    """Trainable and non-trainable weights, for the size report."""
    return int(model.count_params())
