"""Scores of one classifier on one fold, and their mean over folds in the report's layout."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainer.evaluate import confusion, macro_f1


def scores(y: np.ndarray, pred: np.ndarray, k: int) -> dict[str, float]:
    """Accuracy, macro-F1 and unweighted average recall (UAR) of predictions over k classes."""
    cm = confusion(np.asarray(y), np.asarray(pred), k)
    support = cm.sum(axis=1)
    present = support > 0
    recall = np.diag(cm)[present] / support[present]
    return {
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "macro_f1": float(macro_f1(cm)),
        "uar": float(recall.mean()) if present.any() else 0.0,
    }


def majority_prediction(y_train: np.ndarray, n_test: int, k: int) -> np.ndarray:
    """Always the most frequent class of the training persons."""
    return np.full(n_test, int(np.bincount(y_train, minlength=k).argmax()))


def over_folds(per_fold: Sequence[dict[str, float]]) -> dict:
    """Mean of each metric over folds (folds weigh equally), its standard deviation, and the folds themselves."""
    metrics = per_fold[0].keys()
    out: dict = {m: round(float(np.mean([f[m] for f in per_fold])), 4) for m in metrics}
    out["sd"] = {m: round(float(np.std([f[m] for f in per_fold])), 4) for m in metrics}
    out["per_fold"] = [{m: round(float(f[m]), 4) for m in metrics} for f in per_fold]
    return out


def print_fold(what: str, fold: dict[str, dict[str, float]]) -> None:
    """One line of progress: each classifier's accuracy / macro-F1 on the fold `what` names."""
    print(
        f"{what}: " + " ".join(f"{n} {s['accuracy']:.3f}/{s['macro_f1']:.3f}" for n, s in fold.items()),
        flush=True,
    )


def add_fold(
    per_fold: dict[str, list[dict[str, float]]], fold: dict[str, dict[str, float]], what: str
) -> None:
    """A fold's scores appended to each classifier's list (for over_folds), and printed as progress."""
    for name, s in fold.items():
        per_fold.setdefault(name, []).append(s)
    print_fold(what, fold)
