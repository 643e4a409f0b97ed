"""Which features a model may use: those whose emotion effect holds in every corpus it learns from.

Utterance functionals number in the thousands, most of them carry a speaker's or a studio's traits more than
an emotion, and corpora disagree on many of them (a feature that separates calm from sad in one corpus may
not in another). Ranking features by their weakest per-corpus ANOVA F statistic (between-class over
within-class variance of the class means) keeps the ones every corpus agrees carry emotion, computed on the
training rows only. The choice ships inside the model, which reads only the kept columns of its input
(trainer.speech_model), so the edge feeds every feature as before.
"""

from __future__ import annotations

import warnings

import numpy as np


def emotion_effect(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One-way ANOVA F statistic of each feature across the classes present (0 where undefined: a constant
    feature, or fewer than two classes)."""
    from sklearn.feature_selection import f_classif

    if len(np.unique(y)) < 2:
        return np.zeros(x.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "features are constant": their effect is 0 below
        f, _ = f_classif(x, y)
    return np.nan_to_num(f, nan=0.0, posinf=0.0)


def agreed_features(x: np.ndarray, y: np.ndarray, corpora: np.ndarray, share: float) -> np.ndarray:
    """A boolean mask keeping `share` of the features (at least one): the largest weakest-corpus emotion
    effect, each corpus's effect computed on its own rows."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"feature share must be in (0, 1], got {share}")
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(corpora):
        raise ValueError(f"features {x.shape}, {len(y)} labels and {len(corpora)} corpus names do not match")
    if len(x) == 0:
        raise ValueError("no training rows to choose features on")
    corpora = np.asarray(corpora)
    weakest = np.min([emotion_effect(x[corpora == c], y[corpora == c]) for c in np.unique(corpora)], axis=0)
    keep = np.zeros(x.shape[1], bool)
    keep[np.argsort(-weakest, kind="stable")[: max(1, round(share * x.shape[1]))]] = True
    return keep
