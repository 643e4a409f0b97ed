"""The node's per-wearer feature baselines (mmer_core.wearer_baseline), kept on disk beside the spool.

Every feature-vector window updates its modality's baseline, whichever model serves, so a model that asks
for a baseline is calibrated from the moment it is swapped in. The statistics are saved every
`save_every` windows and at shutdown, so a restart does not start a new calibration period; a state file
of another wearer, or one that does not parse, is set aside and the calibration starts again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mmer_core.wearer_baseline import DEFAULT_HORIZON, WearerBaseline, model_input, requested, with_levels

log = logging.getLogger(__name__)

STATE_FILE = "wearer-baseline.json"


class Calibrating(Exception):
    """The serving model needs the wearer's baseline, and the calibration period is not over."""


class WearerBaselines:
    """One baseline per feature modality for the node's wearer."""

    def __init__(self, path: Path | None, subject_id: str, save_every: int = 60) -> None:
        self.path = path
        self.subject_id = subject_id
        self.save_every = save_every
        self.stats: dict[str, WearerBaseline] = {}
        self._unsaved = 0
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            if data.get("subject_id") != self.subject_id:
                raise ValueError(f"it is the baseline of subject {data.get('subject_id')!r}")
            self.stats = {m: WearerBaseline.from_json(s) for m, s in data["modalities"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = path.with_name(path.name + ".bad")
            os.replace(path, aside)
            self.stats = {}
            log.warning("wearer baseline %s set aside as %s, calibrating again: %s", path, aside.name, exc)
            return
        log.info(
            "wearer baseline of %s loaded: %s",
            self.subject_id,
            ", ".join(f"{m} {b.n} windows" for m, b in self.stats.items()),
        )

    def observe(self, modality: str, x: np.ndarray) -> None:
        """Add one preprocessed window; only feature vectors (1-D) have a baseline."""
        if x.ndim != 1:
            return
        baseline = self.stats.get(modality)
        if baseline is None or baseline.features != x.shape[0]:
            baseline = self.stats[modality] = WearerBaseline(x.shape[0], DEFAULT_HORIZON)
        baseline.update(x)
        self._unsaved += 1
        if self.path is not None and self._unsaved >= self.save_every:
            self.save()

    def model_input(self, modality: str, x: np.ndarray, params: Mapping[str, float]) -> np.ndarray:
        """x as the model with these preprocessing params expects it; Calibrating while it cannot be yet."""
        wanted = requested(params)
        if wanted is None:
            return x
        warmup, horizon = wanted
        baseline = self.stats.get(modality)
        if x.ndim != 1 or baseline is None or not baseline.calibrated(warmup):
            seen = 0 if baseline is None else baseline.n
            raise Calibrating(f"{modality}: {seen} of {warmup} calibration windows")
        baseline.horizon = horizon
        return model_input(baseline.standardise(x), x, with_levels(params))

    def save(self) -> None:
        """Write the state atomically (a crash leaves the previous file). A disk that refuses the write costs
        only the saving: the statistics stay in memory and scoring goes on."""
        if self.path is None:
            return
        data = {"subject_id": self.subject_id, "modalities": {m: b.to_json() for m, b in self.stats.items()}}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("wearer baseline not saved to %s: %s", self.path, exc)
        self._unsaved = 0
