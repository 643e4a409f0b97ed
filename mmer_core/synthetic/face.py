"""Drawn faces inside camera frames: mouth curvature follows valence, eye and brow openness follow arousal.

Shapes are drawn with soft edges in face coordinates; a random pose (shift,
rotation, scale), a lighting gradient, pixel noise and an occluding block
(a hand, hair) make the picture as imperfect as a wearable camera's. Each face
is placed somewhere in a larger frame over a background, so the face detector
of the image preprocessing runs on them as on a real camera's frames.
"""

from __future__ import annotations

import numpy as np

from mmer_core.synthetic.traits import Traits

FACE_PX = 96
FRAME_H, FRAME_W = 120, 160


def _soft(d: np.ndarray, width: float = 0.035) -> np.ndarray:
    """1 inside (d < 0), 0 outside, with an anti-aliased edge."""
    return 1.0 / (1.0 + np.exp(np.clip(d / width, -40, 40)))


def draw(
    traits: Traits,
    valence: np.ndarray,
    arousal: np.ndarray,
    rng: np.random.Generator,
    noise: float,
    size: int = FACE_PX,
) -> np.ndarray:
    """(n, size, size) uint8 face pictures for n (valence, arousal) pairs."""
    n = len(valence)
    v = traits.expressiveness * valence[:, None, None]
    a = traits.expressiveness * arousal[:, None, None]
    angle = rng.normal(0, 0.12 * noise, n)[:, None, None]
    scale = rng.uniform(0.9, 1.1, n)[:, None, None]
    shift = rng.normal(0, 0.05 * noise, (2, n))[:, :, None, None]
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    x0, y0 = gx[None] - shift[0], gy[None] - shift[1]
    x = (np.cos(angle) * x0 + np.sin(angle) * y0) / scale
    y = (-np.sin(angle) * x0 + np.cos(angle) * y0) / scale

    face = _soft(np.sqrt((x / traits.face_width) ** 2 + (y / 0.95) ** 2) - 1.0)
    img = 0.15 + (traits.skin - 0.15) * face
    eye_open = 0.05 + 0.05 * (a + 1)
    for side in (-1, 1):
        ex = x - side * traits.eye_gap
        eye = _soft(np.sqrt((ex / 0.11) ** 2 + ((y + 0.2) / eye_open) ** 2) - 1.0)
        img -= 0.45 * eye * face
        brow_y = -0.35 - 0.12 * (a + 1) / 2 - 0.05 * side * ex * (v < 0) * 2
        brow = _soft(np.abs(y - brow_y - 0.15 * (-v) * side * ex) - 0.025, 0.02) * (np.abs(ex) < 0.16)
        img -= 0.35 * brow * face
    curve = 0.55 * v
    mouth_y = 0.45 - curve * (x / traits.mouth_width) ** 2 + curve * 0.5
    mouth_open = 0.02 + 0.05 * (a + 1) / 2
    mouth = _soft(np.abs(y - mouth_y) - mouth_open, 0.025) * (np.abs(x) < traits.mouth_width)
    img -= 0.45 * mouth * face

    light = rng.uniform(0.7, 1.2, n)[:, None, None] + rng.normal(0, 0.15, (n, 1, 1)) * gx[None]
    img = img * light + rng.normal(0, 0.2 * noise, img.shape)
    occluded = rng.random(n) < 0.25 * noise
    for i in np.flatnonzero(occluded):
        h, w = rng.integers(size // 6, size * 5 // 12, 2)
        r0, c0 = rng.integers(0, size - h), rng.integers(0, size - w)
        img[i, r0 : r0 + h, c0 : c0 + w] = rng.uniform(0.1, 0.9)
    return (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


def frames(
    traits: Traits, valence: np.ndarray, arousal: np.ndarray, rng: np.random.Generator, noise: float
) -> np.ndarray:
    """(n, FRAME_H, FRAME_W) uint8 camera frames, each with one drawn face somewhere over a textured background."""
    n = len(valence)
    faces = draw(traits, valence, arousal, rng, noise)
    gy = np.linspace(0.0, 1.0, FRAME_H)[:, None]
    out = np.empty((n, FRAME_H, FRAME_W), np.uint8)
    for i in range(n):
        tone = rng.uniform(0.2, 0.8) + rng.uniform(-0.15, 0.15) * gy
        background = np.clip(tone + rng.normal(0, 0.03, (FRAME_H, FRAME_W)), 0.0, 1.0)
        out[i] = (background * 255).astype(np.uint8)
        r0 = rng.integers(0, FRAME_H - FACE_PX + 1)
        c0 = rng.integers(0, FRAME_W - FACE_PX + 1)
        out[i, r0 : r0 + FACE_PX, c0 : c0 + FACE_PX] = faces[i]
    return out
