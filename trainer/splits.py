"""Train/validation/test splits: random, or subject-independent (whole subjects held out)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLITS = ("subject", "random")


@dataclass(frozen=True)
class Split:
    kind: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_split(
    subjects: np.ndarray, kind: str = "subject", val_frac: float = 0.2, test_frac: float = 0.2, seed: int = 0
) -> Split:
    """Index split; "subject" keeps every subject in exactly one part so the test measures unseen people."""
    n = len(subjects)
    rng = np.random.default_rng(seed)
    if kind == "random":
        order = rng.permutation(n)
        n_test = max(1, round(n * test_frac))
        n_val = max(1, round(n * val_frac))
        return Split(
            kind,
            np.sort(order[n_test + n_val :]),
            np.sort(order[n_test : n_test + n_val]),
            np.sort(order[:n_test]),
        )
    if kind != "subject":
        raise ValueError(f"split: unknown kind {kind!r}; expected one of {SPLITS}")
    unique = np.unique(np.asarray(subjects).astype(str))
    if len(unique) < 3:
        raise ValueError(f"split: subject-independent split needs >= 3 subjects, got {len(unique)}")
    unique = unique[rng.permutation(len(unique))]
    n_test = max(1, round(len(unique) * test_frac))
    n_val = max(1, round(len(unique) * val_frac))
    test_s, val_s = set(unique[:n_test]), set(unique[n_test : n_test + n_val])
    subj = np.asarray(subjects).astype(str)
    in_test = np.array([s in test_s for s in subj])
    in_val = np.array([s in val_s for s in subj])
    idx = np.arange(n)
    return Split(kind, idx[~in_test & ~in_val], idx[in_val], idx[in_test])
