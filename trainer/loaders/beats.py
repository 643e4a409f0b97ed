"""Heart-rate windows from detected beats, shared by every loader that derives beats from a PPG."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.preprocess import preprocess_batch
from trainer.data import Dataset

SPEC = SPECS["hr"]
STRIDE_S = SPEC.hop_s


def beats_in_window(times: np.ndarray, rr: np.ndarray, end_s: float) -> np.ndarray | None:
    """RR intervals of the beats in the HR window ending at end_s, or None when too few beats fell in it."""
    inside = (times > end_s - SPEC.window_s) & (times <= end_s)
    return rr[inside] if inside.sum() >= SPEC.params["min_beats"] else None


@dataclass
class BeatWindows:
    """Labelled beat windows as a loader collects them, turned into a Dataset at the end."""

    raws: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)

    def add(self, rr: np.ndarray, label: int, subject: str, end_s: float) -> None:
        self.raws.append(rr)
        self.labels.append(label)
        self.subjects.append(subject)
        self.ends.append(end_s)

    def dataset(self, description: str) -> Dataset:
        """Preprocess, leaving out windows whose beats are mostly implausible (motion)."""
        keep, rows = [], []
        for i, r in enumerate(self.raws):
            try:
                rows.append(preprocess_batch("hr", [r])[0])
                keep.append(i)
            except ValueError:
                continue
        keep_idx = np.array(keep)
        return Dataset(
            "hr", np.stack(rows), np.array(self.labels)[keep_idx], np.array(self.subjects)[keep_idx],
            np.array(self.ends)[keep_idx], description,
        )  # fmt: skip
