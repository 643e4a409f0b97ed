"""Training-time augmentation of aligned face crops: what differs between two photos of the same expression.

A mirrored face shows the same emotion; the detector's box and the eye finder leave a few pixels of shift,
a few degrees of roll and a few percent of scale; cameras and rooms change brightness and contrast. Each
training batch gets fresh random draws of all of these, so the model cannot learn a person's exact pixels.
Crops stay in [0, 1], as the preprocessing gives them.
"""

from __future__ import annotations

import numpy as np

MAX_ROLL_DEG = 10.0
MAX_SCALE = 0.08
MAX_SHIFT = 0.06  # of the crop's side
CONTRAST = (0.7, 1.3)
MAX_BRIGHTNESS = 0.1


def augment_faces(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, S, S, 1) crops in [0, 1] -> new random variants: mirror, roll, scale, shift, contrast, brightness."""
    import cv2

    n, size = len(x), x.shape[1]
    out = np.empty_like(x)
    angles = rng.uniform(-MAX_ROLL_DEG, MAX_ROLL_DEG, n)
    scales = rng.uniform(1 - MAX_SCALE, 1 + MAX_SCALE, n)
    shifts = rng.uniform(-MAX_SHIFT, MAX_SHIFT, (n, 2)) * size
    flips = rng.random(n) < 0.5
    gains = rng.uniform(*CONTRAST, n)
    offsets = rng.uniform(-MAX_BRIGHTNESS, MAX_BRIGHTNESS, n)
    for i in range(n):
        m = cv2.getRotationMatrix2D((size / 2, size / 2), float(angles[i]), float(scales[i]))
        m[:, 2] += shifts[i]
        img = cv2.warpAffine(
            x[i, ..., 0], m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        if flips[i]:
            img = img[:, ::-1]
        mean = img.mean()
        out[i, ..., 0] = np.clip((img - mean) * gains[i] + mean + offsets[i], 0.0, 1.0)
    return out
