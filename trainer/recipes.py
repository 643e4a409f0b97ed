"""The deployed speech recipe, shared by `mmer trainer pipeline` and the speech yardstick so that the figures
the yardstick reports are the figures of what the pipeline ships.

Chosen on RAVDESS folds by speaker (bench/realdata.py): utterance functionals taken relative to the
speaker's running baseline beat absolute ones by several points, as voices differ more between people than
one voice between emotions; ComParE's 6373 functionals beat eGeMAPS's 88 under the same model; class
weights keep macro-F1 from paying for a corpus's dominant class. Only the quarter of the functionals whose
emotion effect is strongest in the weakest training corpus is used (trainer.feature_selection): on RAVDESS and
CREMA-D folds by speaker it raised CREMA-D's macro-F1 by several points and lessened what training on both
corpora costs RAVDESS.
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
    epochs: training epochs, all of them (no early stopping: see trainer.models.EARLY_STOPPING);
    methods: int8 calibrations tried, the one chosen as the pipeline chooses, on the training speakers."""

    warmup: int = 10
    epochs: int = 100
    methods: tuple[str, ...] = ("max", "percentile", "max-percentile", "entropy")

    def quick(self) -> SpeechRecipe:
        """A tiny run for tests: figures mean nothing."""
        return replace(self, epochs=3, methods=("max",))

    def describe(self) -> dict:
        return {
            "features": "openSMILE ComParE 2016 functionals per utterance (6373), utterances by WebRTC VAD",
            "normalisation": f"speaker's running baseline, first {self.warmup - 1} utterances unscored",
            "features_used": "the quarter with the strongest emotion effect in the weakest training corpus",
            "model": f"L2-regularised linear softmax, loss balanced per corpus and class, {self.epochs} epochs, int8 (QDQ)",
        }

    def train(self, x: np.ndarray, y: np.ndarray, corpora: np.ndarray, work: Path, seed: int) -> Trained:
        """Train on the training speakers' rows (already relative to their baselines), every corpus and every
        class of it weighing the same (trainer.balance, as the pipeline weighs them); export, quantize."""
        from trainer.balance import balanced_sample_weights
        from trainer.evaluate import evaluate_onnx
        from trainer.export import export_onnx
        from trainer.models import EARLY_STOPPING, build_model, feature_mask, fit
        from trainer.pipeline import choose
        from trainer.quantize import quantize

        k = len(QUADRANTS)
        model = build_model("speech", k, x, seed, keep=feature_mask("speech", x, y, corpora))
        fit(
            model,
            x,
            y,
            x[:64],
            y[:64],
            self.epochs,
            seed,
            lambda _: None,
            sample_weight=balanced_sample_weights(y, corpora),
            early_stopping=EARLY_STOPPING["speech"],
        )
        work.mkdir(parents=True, exist_ok=True)
        fp32 = export_onnx(model, work / "model.fp32.onnx", get_spec("speech").input_name, x[:64])
        reference = evaluate_onnx(fp32, x, y, k, latency_runs=1)
        rng = np.random.default_rng(seed)
        calib = x[rng.permutation(len(x))[:256]]
        methods = {}
        for method in self.methods:
            path = quantize(fp32, work / f"model.{method}.onnx", method, calib)
            methods[method] = evaluate_onnx(path, x, y, k, latency_runs=1)
        chosen = choose(reference, methods, 1.0)
        return Trained(fp32, work / f"model.{chosen}.onnx", chosen)


SPEECH = SpeechRecipe()
