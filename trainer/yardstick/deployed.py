"""The deployed recipe on one fold, as `mmer trainer pipeline` trains it: Keras on the training persons
(some of them held out to stop early and to choose the quantization), ONNX, every INT8 method, and the one
the pipeline's rule chooses on the held-out persons; plus scoring an ONNX model as the edge runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainer.data import Dataset
from trainer.evaluate import evaluate_onnx, session
from trainer.quantize import METHODS, quantize
from trainer.recipes import Trained
from trainer.yardstick.options import YardstickOptions

VALIDATION_SHARE = 0.2
CALIBRATION_WINDOWS = 256


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
    """Train, export and quantize the modality's model on `train`; choose the int8 method as the pipeline does."""
    from trainer.balance import balanced_sample_weights
    from trainer.export import export_onnx
    from trainer.face_recipe import fit_faces
    from trainer.models import balanced_class_weights, build_model, fit
    from trainer.pipeline import choose

    is_val = np.isin(train.subjects, validation_persons(train.subjects, seed))
    fit_part, val = train.take(~is_val), train.take(is_val)
    k = len(train.taxonomy)
    weights = balanced_class_weights(fit_part.y) if class_weights == "balanced" else None
    if train.modality == "image":
        rows = balanced_sample_weights(fit_part.y, np.zeros(len(fit_part))) if weights is not None else None
        face = fit_faces(fit_part, val, epochs, seed, rows, lambda _: None)
        model, kind = face.model, face.kind
    else:
        model, kind = build_model(train.modality, k, fit_part.x, seed), ""
        fit(model, fit_part.x, fit_part.y, val.x, val.y, epochs, seed, lambda _: None, class_weight=weights)
    work.mkdir(parents=True, exist_ok=True)
    fp32_path = export_onnx(model, work / "model.fp32.onnx", model.input.name, val.x[:64])
    fp32 = evaluate_onnx(fp32_path, val.x, val.y, k, latency_runs=1)
    calibration = fit_part.x[np.random.default_rng(seed).permutation(len(fit_part))[:CALIBRATION_WINDOWS]]
    paths = {m: quantize(fp32_path, work / f"model.{m}.onnx", m, calibration) for m in methods}
    chosen = choose(
        fp32, {m: evaluate_onnx(p, val.x, val.y, k, latency_runs=1) for m, p in paths.items()}, 1.0
    )
    return Trained(fp32_path, paths[chosen], chosen, kind)


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
