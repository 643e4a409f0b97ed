"""Tiny separable datasets for trainer tests (fast to fit, so tests measure the pipeline, not the data)."""

from __future__ import annotations

import numpy as np


def blobs(n: int, shape: tuple[int, ...], n_classes: int = 4, seed: int = 0, spread: float = 0.6):
    """Class-dependent means plus noise; returns x (n, *shape) float32, y (n,), subjects (n,)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, size=(n_classes, *shape)) * 2.0
    y = rng.integers(0, n_classes, size=n)
    x = centres[y] + rng.normal(0.0, spread, size=(n, *shape))
    subjects = np.array([f"s{i % 6}" for i in range(n)])
    return x.astype(np.float32), y.astype(np.int64), subjects
