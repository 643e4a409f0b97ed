"""Faces: grayscale, crop to the face box, area-resample to 48x48, scale to [0, 1]."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.preprocess._checks import as_finite_array

SPEC = SPECS["image"]
SIZE = int(SPEC.params["size"])
LUMA = np.array([SPEC.params["luma_r"], SPEC.params["luma_g"], SPEC.params["luma_b"]])  # ITU-R BT.601
MIN_SIDE = int(SPEC.params["min_side_px"])


@lru_cache(maxsize=64)
def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: each output pixel averages the input span it covers (box filter)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    left = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(edges[1:, None], left + 1) - np.maximum(edges[:-1, None], left), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def to_gray(img: np.ndarray, eight_bit: bool) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3|4), 8-bit or [0, 1] floats -> (H, W) floats in [0, 1]."""
    x = img.astype(np.float64)
    if eight_bit or x.max() > 1.0:
        x = x / 255.0
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    elif x.ndim == 3:
        if x.shape[2] not in (3, 4):
            raise ValueError(f"image: expected 1, 3 or 4 colour channels, got {x.shape[2]}")
        x = x[..., :3] @ LUMA
    return x


def crop(img: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Crop to the face box (x, y, w, h), or to the centred square when no box is given."""
    h, w = img.shape[:2]
    if box is None:
        side = min(h, w)
        x0, y0 = (w - side) // 2, (h - side) // 2
        return img[y0 : y0 + side, x0 : x0 + side]
    x0, y0, bw, bh = (int(v) for v in box)
    if bw <= 0 or bh <= 0 or x0 < 0 or y0 < 0 or x0 + bw > w or y0 + bh > h:
        raise ValueError(f"image: face box {box} lies outside the {w}x{h} frame")
    return img[y0 : y0 + bh, x0 : x0 + bw]


def preprocess(raw: object, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """One frame (any size, gray or RGB) -> (48, 48, 1) float32 in [0, 1]."""
    arr = np.asarray(raw)
    img = as_finite_array("image", arr, (2, 3))
    if min(img.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"image: too small: {img.shape[1]}x{img.shape[0]}, need at least {MIN_SIDE}x{MIN_SIDE} pixels"
        )
    gray = crop(to_gray(img, eight_bit=arr.dtype == np.uint8), box)
    out = _area_matrix(gray.shape[0], SIZE) @ gray @ _area_matrix(gray.shape[1], SIZE).T
    return np.clip(out, 0.0, 1.0).astype(np.float32)[..., None]


def preprocess_batch(raws: list[object]) -> np.ndarray:
    """Frames may differ in size, so each is resampled on its own (two small matrix products)."""
    if len(raws) == 0:
        return np.empty((0, *SPEC.input_shape), np.float32)
    return np.stack([preprocess(r) for r in raws])
