"""Per-wearer feature baseline: feature vectors taken relative to the wearer's own running mean and spread.

Physiological levels (resting heart rate, HRV, EEG band power) differ more between people than between
one person's states, so a model that sees absolute levels learns who is wearing the device. Relative to
the wearer's baseline it sees change instead. The edge node keeps the statistics from unlabelled windows
(the first `warmup` windows are the calibration period and are not scored); the trainer standardises each
training subject's windows with the same estimator in recording order (`relative_to_wearers`), so the
model is trained on exactly what the edge will give it.

A model asks for it in its manifest: `preprocessing.params[WARMUP_PARAM]` > 0 windows of calibration,
`preprocessing.params[HORIZON_PARAM]` windows remembered (exponential forgetting, so a baseline follows
slow drift over days without being moved by one stressful hour), `preprocessing.params[LEVELS_PARAM]` = 1
when the model also takes the absolute features (`model_input`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

WARMUP_PARAM = "wearer_baseline_windows"
HORIZON_PARAM = "wearer_baseline_horizon"
# 1: the model takes the relative features followed by the window's own (absolute) features, so it sees
# both change from the wearer's baseline and levels that mean the same for everyone (a channel's absence)
LEVELS_PARAM = "wearer_baseline_levels"
DEFAULT_HORIZON = 3600
MIN_STD = 1e-6


def requested(params: Mapping[str, float]) -> tuple[int, int] | None:
    """(warmup, horizon) when a manifest's preprocessing params ask for a wearer baseline, else None;
    ValueError for values no baseline can have (bundle verification refuses such a manifest)."""
    warmup = params.get(WARMUP_PARAM, 0.0)
    horizon = params.get(HORIZON_PARAM, DEFAULT_HORIZON)
    for name, value in ((WARMUP_PARAM, warmup), (HORIZON_PARAM, horizon)):
        if not (math.isfinite(value) and value == int(value) and value >= 0):
            raise ValueError(f"{name} must be a whole number >= 0, got {value}")
    if warmup == 0:
        return None
    if horizon < 1:
        raise ValueError(f"{HORIZON_PARAM} must be >= 1, got {horizon}")
    return int(warmup), int(horizon)


def with_levels(params: Mapping[str, float]) -> bool:
    """Whether a manifest's model takes the absolute features after the relative ones."""
    return params.get(LEVELS_PARAM, 0.0) == 1.0


def model_input(relative: np.ndarray, x: np.ndarray, levels: bool) -> np.ndarray:
    """What a model with a wearer baseline takes: the relative features, followed by the absolute ones
    when it asks for levels (float32, along the last axis)."""
    return np.concatenate([relative, x], axis=-1).astype(np.float32) if levels else relative


@dataclass
class WearerBaseline:
    """Running mean and variance of one wearer's feature vectors.

    The update weighs the n-th window by max(1/n, 1/horizon): the exact mean and population variance of
    everything seen until `horizon` windows, an exponentially weighted one after.
    """

    features: int
    horizon: int = DEFAULT_HORIZON
    n: int = 0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    var: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.features < 1 or self.horizon < 1:
            raise ValueError(
                f"wearer baseline: features and horizon must be >= 1, got {self.features}, {self.horizon}"
            )
        self.mean = np.zeros(self.features) if self.mean is None else np.asarray(self.mean, dtype=np.float64)
        self.var = np.zeros(self.features) if self.var is None else np.asarray(self.var, dtype=np.float64)
        if self.mean.shape != (self.features,) or self.var.shape != (self.features,):
            raise ValueError(f"wearer baseline: mean and var must have shape ({self.features},)")
        if self.n < 0 or not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.var))):
            raise ValueError("wearer baseline: negative count or non-finite statistics")
        if np.any(self.var < 0):
            raise ValueError("wearer baseline: negative variance")

    def update(self, x: np.ndarray) -> None:
        """Add one window's feature vector."""
        x = self._check(x)
        self.n += 1
        alpha = max(1.0 / self.n, 1.0 / self.horizon)
        delta = x - self.mean
        self.mean += alpha * delta
        self.var = (1.0 - alpha) * (self.var + alpha * delta**2)

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """x relative to the baseline, in the wearer's standard deviations (float32)."""
        std = np.sqrt(self.var)
        scale = np.where(std > MIN_STD, std, 1.0)  # a feature constant for this wearer only moves
        return ((self._check(x) - self.mean) / scale).astype(np.float32)

    def calibrated(self, warmup: int) -> bool:
        return self.n >= warmup

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.features,):
            raise ValueError(
                f"wearer baseline: feature vector of shape {x.shape}, expected ({self.features},)"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("wearer baseline: non-finite feature")
        return x

    def to_json(self) -> dict:
        return {
            "features": self.features,
            "horizon": self.horizon,
            "n": self.n,
            "mean": self.mean.tolist(),
            "var": self.var.tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> WearerBaseline:
        """The inverse of to_json; ValueError (never a crash later) for anything malformed."""
        try:
            baseline = cls(
                int(data["features"]),
                int(data["horizon"]),
                int(data["n"]),
                np.asarray(data["mean"], dtype=np.float64),
                np.asarray(data["var"], dtype=np.float64),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"wearer baseline: malformed state ({exc})") from None
        return baseline


def relative_to_wearers(
    x: np.ndarray, wearers: np.ndarray, warmup: int, horizon: int = DEFAULT_HORIZON, levels: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Each row relative to its wearer's baseline as the edge computes it, rows taken in the given (recording)
    order per wearer; returns (model inputs: standardised rows, followed by the rows themselves when
    levels; mask of rows scored, i.e. past each wearer's warm-up)."""
    if x.ndim != 2:
        raise ValueError(f"wearer baseline: needs feature vectors (N, F), got shape {x.shape}")
    out = np.zeros(x.shape, dtype=np.float32)
    scored = np.zeros(len(x), dtype=bool)
    for wearer in np.unique(wearers):
        baseline = WearerBaseline(x.shape[1], horizon)
        for i in np.flatnonzero(wearers == wearer):
            baseline.update(x[i])
            out[i] = baseline.standardise(x[i])
            scored[i] = baseline.calibrated(warmup)
    return model_input(out, x, levels), scored
