"""What a bundle says about a labelled set, one row per unit the edge reports, and its report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.evaluate import confusion
from trainer.yardstick.scores import scores


@dataclass(frozen=True)
class Scored:
    """A model's probabilities on a labelled set: one row per unit (utterance, window or frame)."""

    unit: str
    labels: tuple[str, ...]
    y: np.ndarray
    probs: np.ndarray
    persons: np.ndarray

    def report(self) -> dict:
        """Accuracy, macro-F1, the majority-class accuracy of this set, per-class recall, confusion, counts."""
        k = len(self.labels)
        pred = self.probs.argmax(axis=1)
        cm = confusion(self.y, pred, k)
        s = scores(self.y, pred, k)
        support = cm.sum(axis=1)
        return {
            "accuracy": round(s["accuracy"], 4),
            "macro_f1": round(s["macro_f1"], 4),
            "uar": round(s["uar"], 4),
            "majority": round(float(support.max() / max(support.sum(), 1)), 4),
            "n": len(self.y),
            "persons": len(np.unique(self.persons)),
            "unit": self.unit,
            "labels": list(self.labels),
            "recall": {
                label: round(float(cm[i, i] / support[i]), 4) if support[i] else None
                for i, label in enumerate(self.labels)
            },
            "counts": {label: int(support[i]) for i, label in enumerate(self.labels)},
            "confusion": cm.tolist(),
        }
