"""The pipeline's steps one at a time, sharing a work directory: train -> quantize -> evaluate.

``train`` writes WORK/model.fp32.onnx and WORK/split.npz (the preprocessed train/val/test windows it used), so
``quantize`` calibrates on the same training windows and ``evaluate`` scores every model on the same test
split the pipeline would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainer import data as data_mod
from trainer.evaluate import evaluate_onnx
from trainer.quantize import METHODS, calibration_rows, quantize

SPLIT_FILE = "split.npz"
FP32_FILE = "model.fp32.onnx"


def train_step(
    dataset: data_mod.Dataset,
    work: Path,
    split: str,
    seed: int,
    epochs: int,
    log: Callable[[str], None] = print,
) -> Path:
    """Train and export the fp32 model of one modality; returns the ONNX path."""
    from trainer.export import export_onnx
    from trainer.face_recipe import fit_faces
    from trainer.models import train_on
    from trainer.recipes import SPEECH

    parts = data_mod.split(dataset, split, seed)
    work.mkdir(parents=True, exist_ok=True)
    if dataset.modality == "speech":
        log(f"[speech] training on {len(parts.train)} utterances ({split})")
        model = SPEECH.fit(
            parts.train.x, parts.train.y, data_mod.corpus_of(parts.train.subjects), seed, epochs
        )
    elif dataset.modality == "image":
        model = fit_faces(parts.train, parts.val, epochs, seed, None, log).model
    else:
        log(f"[{dataset.modality}] training on {len(parts.train)} windows ({split})")
        model, _ = train_on(dataset.modality, parts.train, parts.val, epochs, seed, log)
    np.savez_compressed(
        work / SPLIT_FILE,
        modality=dataset.modality,
        split=split,
        k=len(dataset.taxonomy),
        x_train=parts.train.x,
        y_train=parts.train.y,
        x_val=parts.val.x,
        y_val=parts.val.y,
        x_test=parts.test.x,
        y_test=parts.test.y,
    )
    path = export_onnx(model, work / FP32_FILE, model.input.name, parts.test.x[:64])
    log(f"[{dataset.modality}] wrote {path} and {work / SPLIT_FILE}")
    return path


def _split(work: Path) -> dict[str, np.ndarray]:
    path = work / SPLIT_FILE
    if not path.is_file() or not (work / FP32_FILE).is_file():
        raise ValueError(f"{work}: no {FP32_FILE}/{SPLIT_FILE}; run `mmer trainer train` into it first")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def quantize_step(work: Path, method: str, percentile: float, windows: int, seed: int) -> Path:
    """INT8 model WORK/model.<method>.onnx calibrated on up to ``windows`` training windows."""
    if method not in METHODS:
        raise ValueError(f"quantize: unknown method {method!r} (known: {', '.join(METHODS)})")
    parts = _split(work)
    calib = calibration_rows(parts["x_train"], seed, windows)
    return quantize(work / FP32_FILE, work / f"model.{method}.onnx", method, calib, percentile)


def evaluate_step(work: Path) -> dict:
    """fp32 and every INT8 model in WORK on the saved test split; also written to WORK/evaluation.json."""
    parts = _split(work)
    k = int(parts["k"])
    fp32 = evaluate_onnx(work / FP32_FILE, parts["x_test"], parts["y_test"], k)
    result: dict = {"modality": str(parts["modality"]), "split": str(parts["split"]), "fp32": fp32.to_json()}
    result["methods"] = {}
    for path in sorted(work.glob("model.*.onnx")):
        method = path.name.removeprefix("model.").removesuffix(".onnx")
        if method == "fp32":
            continue
        e = evaluate_onnx(path, parts["x_test"], parts["y_test"], k)
        ratio = e.accuracy / fp32.accuracy if fp32.accuracy else 0.0
        result["methods"][method] = {
            **e.to_json(),
            "compression": round(fp32.bytes / e.bytes, 4),
            "accuracy_ratio": round(ratio, 4),
            "efficiency": round(ratio * fp32.bytes / e.bytes, 4),
        }
    (work / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
