"""Input checks shared by every modality's preprocessing: one wording for every error."""

from __future__ import annotations

import numpy as np


def as_finite_array(
    modality: str, raw: object, ndim: tuple[int, ...], dtype: type = np.float64
) -> np.ndarray:
    """Convert to an array and refuse empty, non-finite or wrongly shaped input with a clear ValueError."""
    try:
        arr = np.asarray(raw, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{modality}: input is not numeric ({exc})") from None
    if arr.ndim not in ndim:
        raise ValueError(
            f"{modality}: expected an array of {' or '.join(map(str, ndim))} dimensions, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{modality}: input is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{modality}: input has {bad} NaN or infinite values")
    return arr
