"""The deployed speech recipe, shared by `mmer trainer pipeline`, the step-by-step trainer and the speech
yardstick, so that the figures the yardstick reports are the figures of what the pipeline ships.

Chosen on folds by speaker (bench/realdata.py, RAVDESS and CREMA-D): utterance functionals taken relative to
the speaker's running baseline beat absolute ones by several points, as voices differ more between people
than one voice between emotions; ComParE's 6373 functionals beat eGeMAPS's 88 under the same model; class
weights keep macro-F1 from paying for a corpus's dominant class; a quarter of the functionals, those with the
strongest emotion effect, raised CREMA-D's macro-F1 by several points. One linear model for two corpora
scored each corpus's unseen speakers below a model of that corpus alone; one expert per corpus, mixed by a
gate that recognises the corpus from the absolute functionals (trainer.speech_model), does not pay that
price, and an expert that also learnt from the other corpora (its own carrying 80 % of its loss) scored
below one that learnt from its own corpus only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mmer_core.modalities import get_spec
from mmer_core.taxonomy import QUADRANTS

# the share of an expert's loss its own corpus carries: its own corpus only (see the module's docstring)
OWN_SHARE = 1.0


@dataclass(frozen=True)
class Trained:
    """A fold's deployed model: its fp32 and chosen int8 ONNX files, the quantization method, and the kind of
    model where the recipe chooses one (faces: "cnn" or "kernel", trainer.face_recipe)."""

    fp32: Path
    int8: Path
    method: str
    kind: str = ""


def quantized(
    model, modality: str, x: np.ndarray, y: np.ndarray, work: Path, seed: int, methods: tuple[str, ...]
) -> Trained:
    """A trained Keras model exported to work/, quantized with each method (calibrated on up to 256 of its
    training rows drawn with seed) and the method the pipeline would choose on those rows kept."""
    from trainer.evaluate import evaluate_onnx
    from trainer.export import export_onnx
    from trainer.pipeline import choose
    from trainer.quantize import calibration_rows, quantize

    k = len(QUADRANTS)
    work.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(model, work / "model.fp32.onnx", get_spec(modality).input_name, x[:64])
    reference = evaluate_onnx(fp32, x, y, k, latency_runs=1)
    calib = calibration_rows(x, seed)
    evaluations = {}
    for method in methods:
        path = quantize(fp32, work / f"model.{method}.onnx", method, calib)
        evaluations[method] = evaluate_onnx(path, x, y, k, latency_runs=1)
    chosen = choose(reference, evaluations, 1.0)
    return Trained(fp32, work / f"model.{chosen}.onnx", chosen)


@dataclass(frozen=True)
class SpeechRecipe:
    """warmup: utterances of a new speaker the baseline sees before the model scores (unscored);
    epochs: training epochs, all of them (no early stopping: on speech, the validation loss of a few held-out
    speakers stopped training at noise and cost ~10 points on folds by speaker);
    own_share: the share of an expert's loss carried by its own corpus (trainer.speech_model);
    feature_share: the share of the functionals each expert uses, those with the strongest emotion effect in
    its corpus (trainer.feature_selection; the rest mostly tell voices and studios apart);
    l2: the experts' L2 penalty (thousands of functionals from tens of speakers: a strongly regularised
    linear model beat hidden layers and the SVM references on folds by speaker);
    methods: int8 calibrations tried, the one chosen as the pipeline chooses, on the training speakers."""

    warmup: int = 10
    epochs: int = 100
    own_share: float = OWN_SHARE
    feature_share: float = 0.25
    l2: float = 3e-2
    methods: tuple[str, ...] = ("max", "percentile", "max-percentile", "entropy")

    def quick(self) -> SpeechRecipe:
        """A tiny run for tests: figures mean nothing."""
        return replace(self, epochs=3, methods=("max",))

    def describe(self) -> dict:
        return {
            "features": "openSMILE ComParE 2016 functionals per utterance (6373), utterances by WebRTC VAD",
            "normalisation": f"speaker's running baseline, first {self.warmup - 1} utterances unscored; "
            "absolute functionals too",
            "model": "one L2-regularised linear softmax expert per training corpus on the relative functionals "
            f"(the {self.feature_share:.0%} with the strongest emotion effect in its corpus; its corpus "
            f"{self.own_share:.0%} of its loss, classes balanced), mixed by a logistic-regression corpus gate "
            f"on the signed-log absolute functionals, inside one graph; {self.epochs} epochs, int8 (QDQ)",
        }

    def fit(self, x: np.ndarray, y: np.ndarray, corpora: np.ndarray, seed: int, epochs: int | None = None):
        """The Keras model (trainer.speech_model) trained on rows of relative then absolute functionals (or
        absolute ones only, without a wearer baseline), `corpora` naming each row's corpus."""
        from trainer.models import BATCH, STEPS_PER_EXECUTION
        from trainer.speech_model import train_speech_model

        spec = get_spec("speech")
        return train_speech_model(
            x,
            y,
            corpora,
            spec.input_shape[0],
            self.epochs if epochs is None else epochs,
            seed,
            spec.input_name,
            len(QUADRANTS),
            self.own_share,
            self.feature_share,
            self.l2,
            BATCH,
            STEPS_PER_EXECUTION,
        )

    def train(self, x: np.ndarray, y: np.ndarray, corpora: np.ndarray, work: Path, seed: int) -> Trained:
        """Train on the training speakers' rows (relative to their baselines, then absolute), export,
        quantize with each method and keep the one the pipeline would choose."""
        return quantized(self.fit(x, y, corpora, seed), "speech", x, y, work, seed, self.methods)


SPEECH = SpeechRecipe()
