"""The deployed recipe on one fold, as `mmer trainer pipeline` ships it: Keras on the training persons but a
held-out fifth of them, on whom the model's kind (faces), its epochs and its INT8 method are chosen by the
pipeline's rules; then trained again on every training person for those epochs and quantized with that
method, as the pipeline trains the model it ships. Plus scoring an ONNX model as the edge runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainer.data import Dataset
from trainer.evaluate import evaluate_onnx, session
from trainer.quantize import METHODS, calibration_rows, quantize
from trainer.recipes import Trained
from trainer.yardstick.options import YardstickOptions

VALIDATION_SHARE = 0.2


def validation_persons(persons: np.ndarray, seed: int) -> np.ndarray:
    """A seeded fifth (at least one) of the training persons, held out for early stopping and the choice."""
    distinct = np.random.default_rng(seed).permutation(np.unique(persons))
    return distinct[: max(1, round(VALIDATION_SHARE * len(distinct)))]


def train_deployed(
    train: Dataset,
    work: Path,
    seed: int,
    epochs: int,
    methods: Sequence[str] = METHODS,
    class_weights: str = "balanced",
) -> Trained:
    """The modality's model as the pipeline ships it, trained on `train`: kind, epochs and int8 method chosen on
    the validation persons, then trained on all of `train` (a person the model never meets is better served
    by every person there is) and quantized with the chosen method."""
    from trainer.export import export_onnx
    from trainer.pipeline import choose

    is_val = np.isin(train.subjects, validation_persons(train.subjects, seed))
    fit_part, val = train.take(~is_val), train.take(is_val)
    k, balanced = len(train.taxonomy), class_weights == "balanced"
    model, kind, best_epochs = _fitted(fit_part, val, epochs, seed, balanced)
    work.mkdir(parents=True, exist_ok=True)
    chosen_fp32 = export_onnx(model, work / "chosen.fp32.onnx", model.input.name, val.x[:64])
    fp32 = evaluate_onnx(chosen_fp32, val.x, val.y, k, latency_runs=1)
    paths = {
        m: quantize(chosen_fp32, work / f"chosen.{m}.onnx", m, calibration_rows(fit_part.x, seed))
        for m in methods
    }
    method = choose(
        fp32, {m: evaluate_onnx(p, val.x, val.y, k, latency_runs=1) for m, p in paths.items()}, 1.0
    )
    shipped, _, _ = _fitted(train, None, best_epochs, seed, balanced, kind)
    fp32_path = export_onnx(shipped, work / "model.fp32.onnx", shipped.input.name, train.x[:64])
    int8_path = quantize(fp32_path, work / f"model.{method}.onnx", method, calibration_rows(train.x, seed))
    return Trained(fp32_path, int8_path, method, kind)


def _fitted(
    data: Dataset, val: Dataset | None, epochs: int, seed: int, balanced: bool, kind: str | None = None
) -> tuple[object, str, int]:
    """(Keras model, its kind ("" but for faces), its best epoch count): stopped early on `val`, or without
    `val` trained for exactly `epochs` epochs (faces: of the given kind)."""
    from trainer.balance import balanced_sample_weights
    from trainer.face_recipe import fit_faces
    from trainer.models import train_on

    rows = balanced_sample_weights(data.y, np.zeros(len(data))) if balanced else None
    if data.modality == "image":
        face = fit_faces(data, val, epochs, seed, rows, lambda _: None, kind)
        return face.model, face.kind, int(face.info["best_epoch"])
    model, info = train_on(data.modality, data, val, epochs, seed, lambda _: None, rows)
    return model, "", int(info["best_epoch"])


def quick_or_full(options: YardstickOptions, epochs: int) -> tuple[int, Sequence[str]]:
    """(epochs, quantization methods) of a fold: a quick run trains 2 epochs and quantizes with max only."""
    return (2, ("max",)) if options.quick else (epochs, METHODS)


def score_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    """Class probabilities, one window at a time in a single-threaded session, as the edge runs the model."""
    sess = session(path)
    name = sess.get_inputs()[0].name
    if len(x) == 0:
        return np.empty((0, sess.get_outputs()[0].shape[-1]), np.float32)
    return np.concatenate([sess.run(["probs"], {name: x[i : i + 1]})[0] for i in range(len(x))])
