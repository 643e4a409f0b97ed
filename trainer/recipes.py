"""The deployed speech recipe, shared by `mmer trainer pipeline` and the speech yardstick so that the figures
the yardstick reports are the figures of what the pipeline ships.

Chosen on RAVDESS folds by speaker (bench/realdata.py): utterance functionals taken relative to the
speaker's running baseline beat absolute ones by several points, as voices differ more between people than
one voice between emotions; class weights keep macro-F1 from paying for a corpus's dominant class.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mmer_core.modalities import get_spec
from mmer_core.taxonomy import QUADRANTS


@dataclass(frozen=True)
class Trained:
    """A fold's deployed model: its fp32 and chosen int8 ONNX files and the quantization method."""

    fp32: Path
    int8: Path
    method: str


@dataclass(frozen=True)
class SpeechRecipe:
    """warmup: utterances of a new speaker the baseline sees before the model scores (unscored);
    epochs: most epochs (early stopping on validation speakers); val_share: training speakers that
    validate; methods: int8 calibrations tried, chosen on the validation speakers."""

    warmup: int = 10
    epochs: int = 200
    val_share: float = 0.2
    methods: tuple[str, ...] = ("max", "percentile", "max-percentile", "entropy")

    def quick(self) -> SpeechRecipe:
        """A tiny run for tests: figures mean nothing."""
        return replace(self, epochs=3, methods=("max",))

    def describe(self) -> dict:
        return {
            "features": "openSMILE eGeMAPSv02 functionals per utterance (88), utterances by WebRTC VAD",
            "normalisation": f"speaker's running baseline, first {self.warmup} utterances unscored",
            "model": "MLP, class-balanced loss, int8 (QDQ) with the calibration chosen on validation speakers",
        }

    def train(self, x: np.ndarray, y: np.ndarray, speakers: np.ndarray, work: Path, seed: int,
              quick: bool = False) -> Trained:  # fmt: skip
        """Train on rows of the training speakers (validation speakers drawn from them), export, quantize."""
        from trainer.evaluate import evaluate_onnx
        from trainer.export import export_onnx
        from trainer.models import balanced_class_weights, build_model, fit
        from trainer.pipeline import choose
        from trainer.quantize import quantize

        k = len(QUADRANTS)
        distinct = np.unique(speakers)
        rng = np.random.default_rng(seed)
        n_val = max(1, round(self.val_share * len(distinct)))
        val = np.isin(speakers, rng.permutation(distinct)[:n_val])
        model = build_model("speech", k, x[~val], seed)
        fit(model, x[~val], y[~val], x[val], y[val], self.epochs, seed, lambda _: None,
            balanced_class_weights(y[~val]))  # fmt: skip
        work.mkdir(parents=True, exist_ok=True)
        fp32 = export_onnx(model, work / "model.fp32.onnx", get_spec("speech").input_name, x[:64])
        reference = evaluate_onnx(fp32, x[val], y[val], k, latency_runs=1)
        calib = x[~val][rng.permutation(int((~val).sum()))[:256]]
        methods = {}
        for method in self.methods:
            path = quantize(fp32, work / f"model.{method}.onnx", method, calib)
            methods[method] = evaluate_onnx(path, x[val], y[val], k, latency_runs=1)
        chosen = choose(reference, methods, 1.0)
        return Trained(fp32, work / f"model.{chosen}.onnx", chosen)


SPEECH = SpeechRecipe()
