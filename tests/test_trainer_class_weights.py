"""Balanced class weights for imbalanced real data."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.models import balanced_class_weights


def test_weights_are_inverse_frequency_with_mean_one_per_window() -> None:
    y = np.array([3] * 68 + [1] * 32)  # E4-like: 68 % baseline (calm), 32 % stress (angry)
    w = balanced_class_weights(y)
    assert w == pytest.approx({3: 100 / (2 * 68), 1: 100 / (2 * 32)})
    assert np.mean([w[c] for c in y]) == pytest.approx(1.0)
    assert 0 not in w and 2 not in w, "classes absent from training get no weight"


def test_balanced_data_keeps_unit_weights() -> None:
    assert balanced_class_weights(np.repeat([0, 1, 2, 3], 5)) == pytest.approx(
        {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}
    )
