"""The deployed wrist (hr) recipe, shared by `mmer trainer pipeline` on E4 data and the e4 yardstick, so the
figures the yardstick reports are those of what the pipeline ships.

Chosen on Stress-Predict folds by wearer: each window's features relative to the wearer's running baseline (a
10-minute calibration, unscored) followed by the absolute features, limited to 10 standard deviations, into a
multinomial logistic regression (an L2-penalised softmax layer). Wider models (one or two hidden layers)
learnt the training wearers and scored lower on new ones; a class-balanced loss cost about 2 points of
accuracy for no gain in macro-F1 (logistic regressions on the same folds). Beats alone tell stress apart far
less well, and not linearly: the same softmax over heart beats only lost to a random forest on HR/HRV
statistics at one seed of three, a ten times stronger penalty tied it there, and one hidden layer of 16 beat
it at every seed on both figures. One model early-stopped on a fifth of the training wearers learnt from
four fifths of a few wearers and stopped where those few said; a committee of four (trainer.committee), each
member early-stopped on its own quarter of the wearers, learns from all of them and scored 0.9 to 2.9 points
higher (int8 accuracy 0.783, 0.780, 0.779 against 0.774, 0.752, 0.750 at seeds 7, 8 and 9). A model is
trained for the channels a device has: the full wrist (beats, EDA, temperature), or beats only; its manifest
names the channels it needs, and the edge does not score windows that lack them (a model that learnt from skin
conductance would read its absence as a signal).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mmer_core import wearer_baseline
from mmer_core.modalities import HR_FEATURES, get_spec
from mmer_core.preprocess.hr import REQUIRES
from mmer_core.taxonomy import QUADRANTS
from trainer.recipes import Trained, quantized

OPTIONAL_CHANNELS = ("eda", "temp")
NAMES = {"eda": "EDA tonic level, phasic spread and SCRs (neurokit2's methods)", "temp": "skin temperature"}


def without_channels(x: np.ndarray, channels: tuple[str, ...] = OPTIONAL_CHANNELS) -> np.ndarray:
    """Feature rows (HR_FEATURES) as a device without these channels gives them: the channel's features and
    its presence flag 0 (rows the edge rejects stay NaN)."""
    out = x.copy()
    prefixes = tuple(f"{c}_" for c in channels) + (("scr_",) if "eda" in channels else ())
    cols = [i for i, name in enumerate(HR_FEATURES) if name.startswith(prefixes)]
    out[:, cols] = np.where(np.isnan(out[:, cols]), np.nan, 0.0)
    return out


@dataclass(frozen=True)
class WristRecipe:
    """channels: the optional wrist channels the model uses; warmup: windows of a new wearer the baseline
    sees before the model scores (10 minutes at the hr spec's 5 s hop); widths, widths_beats_only: hidden
    layers of the model with skin channels and with beats only (see `hidden`); l2: its L2 penalty;
    epochs: most epochs of a committee member (early stopping on its validation wearers); members: the
    committee's models (trainer.committee), each validated on its own 1/members of the training wearers;
    methods: int8 calibrations tried, chosen as the pipeline chooses, on the training wearers."""

    channels: tuple[str, ...] = OPTIONAL_CHANNELS
    warmup: int = 120
    horizon: int = wearer_baseline.DEFAULT_HORIZON
    widths: tuple[int, ...] = ()
    widths_beats_only: tuple[int, ...] = (16,)
    l2: float = 1e-3
    clip: float = 10.0
    class_weights: str = "none"
    epochs: int = 200
    members: int = 4
    methods: tuple[str, ...] = ("max", "percentile", "max-percentile", "entropy")

    def quick(self) -> WristRecipe:
        """A tiny run for tests: figures mean nothing."""
        return replace(self, warmup=4, epochs=3, methods=("max",))

    def for_features(self, x: np.ndarray) -> WristRecipe:
        """The recipe for the optional channels present in every window of a data set (HR_FEATURES rows):
        a set with some wearers lacking EDA trains a model that never needs it."""
        present = tuple(c for c in OPTIONAL_CHANNELS if np.all(x[:, HR_FEATURES.index(f"{c}_present")] == 1))
        return replace(self, channels=present)

    def features(self, x: np.ndarray) -> np.ndarray:
        """Feature rows as the recipe's device gives them: channels it does not use are absent."""
        return without_channels(x, tuple(c for c in OPTIONAL_CHANNELS if c not in self.channels))

    @property
    def hidden(self) -> tuple[int, ...]:
        """The model's hidden layers: beats only tell stress apart through HR and HRV together, not linearly."""
        return self.widths if self.channels else self.widths_beats_only

    def beats_only(self) -> WristRecipe:
        """The same recipe for a device that gives heart beats only."""
        return replace(self, channels=())

    def params(self) -> dict[str, float]:
        """The manifest's parameters beyond the hr spec's: the wearer baseline and the channels needed."""
        return {
            wearer_baseline.WARMUP_PARAM: float(self.warmup),
            wearer_baseline.HORIZON_PARAM: float(self.horizon),
            wearer_baseline.LEVELS_PARAM: 1.0,
            **{param: float(c in self.channels) for c, param in REQUIRES.items()},
        }

    def describe(self) -> dict:
        return {
            "features": "60 s windows every 5 s: HR/HRV (beats from BVP)"
            + "".join(f", {NAMES[c]}" for c in self.channels),
            "normalisation": f"wearer's running baseline, first {self.warmup} windows unscored; absolute features too",
            "model": f"softmax on the features{f' after dense {self.hidden}' if self.hidden else ''}, L2 {self.l2:g}, "
            f"inputs within +-{self.clip:g} sd, class weights {self.class_weights}; the mean of a committee of "
            f"{self.members}, each early-stopped on its own 1/{self.members} of the training wearers; int8 (QDQ) "
            "with the calibration chosen on the training wearers",
        }

    def device_inputs(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One wearer's windows in recording order (NaN rows: rejected by the edge, never seen), as a device
        with the recipe's channels gives them -> what the edge gives the model, and which windows it scores
        (accepted and past the warm-up)."""
        features = self.features(features)
        ok = np.all(np.isfinite(features), axis=1)
        out = np.full((len(features), 2 * features.shape[1]), np.nan, np.float32)
        scored = np.zeros(len(features), bool)
        x, past = wearer_baseline.relative_to_wearers(
            features[ok], np.zeros(int(ok.sum())), self.warmup, self.horizon, levels=True
        )
        out[ok], scored[ok] = x, past
        return out, scored

    def fit(self, x: np.ndarray, y: np.ndarray, persons: np.ndarray, seed: int, epochs: int | None = None):
        """The Keras model on model inputs of wearers (device_inputs): a committee (trainer.committee) of
        `members` models, each early-stopped on its own group of the wearers, for at most `epochs` epochs
        (the recipe's when None)."""
        from trainer.committee import fit_committee
        from trainer.models import build_model

        spec = get_spec("hr")

        def member(x_train: np.ndarray, member_seed: int, name: str):
            return build_model(
                "hr", len(QUADRANTS), x_train, member_seed, self.hidden, self.l2, self.clip, name
            )

        return fit_committee(
            member,
            x,
            y,
            persons,
            self.members,
            self.epochs if epochs is None else epochs,
            seed,
            spec.input_name,
            "mmer_hr",
            balanced=self.class_weights == "balanced",
        )

    def train(self, x: np.ndarray, y: np.ndarray, persons: np.ndarray, work: Path, seed: int) -> Trained:
        """Train on model inputs of the training wearers, export, quantize with each method and keep the one
        the pipeline would choose, on the training wearers."""
        return quantized(self.fit(x, y, persons, seed), "hr", x, y, work, seed, self.methods)


WRIST = WristRecipe()
