"""Folds by person: every person is tested exactly once, never trained on in the same fold; and the
whole-recording per-person normalisation the `-oracle` references use."""

from __future__ import annotations

import numpy as np

from mmer_core import wearer_baseline


def person_folds(persons: np.ndarray, n_folds: int, seed: int = 7) -> list[np.ndarray]:
    """The persons of each test fold: the distinct persons shuffled with `seed` and dealt into `n_folds`
    groups of near-equal size (fewer when there are fewer persons); deterministic for a seed."""
    if n_folds < 2:
        raise ValueError(f"need at least 2 folds, got {n_folds}")
    distinct = np.unique(persons)
    if len(distinct) < 2:
        raise ValueError(f"need at least 2 persons to fold by person, got {len(distinct)}")
    shuffled = np.random.default_rng(seed).permutation(distinct)
    return [np.sort(group) for group in np.array_split(shuffled, min(n_folds, len(distinct)))]


def fold_masks(persons: np.ndarray, test_persons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) boolean masks over rows for one fold."""
    test = np.isin(persons, test_persons)
    return ~test, test


def person_oracle(x: np.ndarray, persons: np.ndarray) -> np.ndarray:
    """Rows z-scored with their person's mean and spread over the whole recording (no device has these)."""
    out = np.empty(x.shape, np.float64)
    for p in np.unique(persons):
        rows = persons == p
        std = x[rows].std(axis=0)
        out[rows] = (x[rows] - x[rows].mean(axis=0)) / np.where(std > wearer_baseline.MIN_STD, std, 1.0)
    return out
