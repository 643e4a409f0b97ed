"""Sample weights that keep one corpus from drowning another and one class from drowning the rest.

Real corpora differ in size (CREMA-D has more than twice RAVDESS's clips) and
in label balance (half of CREMA-D maps to `angry`). Unweighted, a model learns
the big corpus's prior and macro-F1 pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def balanced_sample_weights(
    y: np.ndarray, corpora: np.ndarray, shares: Mapping[str, float] | None = None
) -> np.ndarray:
    """One weight per row, mean 1: every corpus carries the same total weight (or its share of `shares`, which
    must name every corpus present and sum to 1), and within a corpus every class it has carries the same
    share. With one corpus these are inverse class frequencies; when every corpus has every class and equal
    shares, the classes also carry equal totals overall."""
    y, corpora = np.asarray(y), np.asarray(corpora)
    if len(y) != len(corpora):
        raise ValueError(f"{len(y)} labels but {len(corpora)} corpus names")
    if len(y) == 0:
        return np.zeros(0)
    weights = np.empty(len(y))
    names = np.unique(corpora)
    if shares is None:
        shares = {str(name): 1.0 / len(names) for name in names}
    missing = [str(name) for name in names if str(name) not in shares]
    if missing or any(v < 0 for v in shares.values()) or not np.isclose(sum(shares.values()), 1.0):
        raise ValueError(f"corpus shares {dict(shares)} must be >= 0, sum to 1 and name every corpus {names}")
    for name in names:
        in_corpus = corpora == name
        classes, counts = np.unique(y[in_corpus], return_counts=True)
        for c, n in zip(classes, counts, strict=True):
            weights[in_corpus & (y == c)] = len(y) * shares[str(name)] / (len(classes) * n)
    return weights
