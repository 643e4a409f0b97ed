"""Drawn faces inside camera frames: mouth curvature follows valence, eye and brow openness follow arousal.

Shapes are drawn with soft edges in face coordinates; a random pose (shift,
rotation, scale), a lighting gradient, pixel noise and an occluding block
(a hand, hair) make the picture as imperfect as a wearable camera's. Each face
is placed somewhere in a larger frame over a background, so the face detector
of the image preprocessing runs on them as on a real camera's frames.

A face shows what its person feels only part of the time: how much it shows
rises and falls over seconds (a face at rest between expressions), and at rest
each person's face has its own look (a mouth that turns down, heavy brows). In
a session the head sways slowly in front of the camera and now and then moves
to a new place, as a seated person does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmer_core.synthetic.traits import Traits

FACE_PX = 96
FRAME_H, FRAME_W = 120, 160
SEAT_S = 30.0  # how long a person stays in one place before moving


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
    v = traits.rest_valence + traits.expressiveness * valence[:, None, None]
    a = traits.rest_arousal + traits.expressiveness * arousal[:, None, None]
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


@dataclass(frozen=True)
class Demeanour:
    """How one person sits before the camera and how much their face shows, as functions of session time."""

    sway: np.ndarray  # (2, 3, 3): per axis (rows, columns) amplitude (share of the free range), Hz, phase
    showing: np.ndarray  # (3, 3): amplitude, Hz, phase of the slow wave of how much the face shows
    reserve: float  # how much of the time the face is at rest: higher, less often it shows anything
    seed: int  # draws each seat (where the head is for SEAT_S)


def sample_demeanour(rng: np.random.Generator) -> Demeanour:
    """One person's head sway and showing of feelings, from population ranges."""
    sway = np.stack([_wave_params(rng, (0.04, 0.1), (0.02, 0.12)) for _ in range(2)])
    showing = _wave_params(rng, (0.8, 0.8), (0.03, 0.15))
    return Demeanour(sway, showing, float(rng.uniform(-1.6, -0.6)), int(rng.integers(2**31)))


def _wave_params(
    rng: np.random.Generator, amplitude: tuple[float, float], hz: tuple[float, float]
) -> np.ndarray:
    """(3, 3) rows of amplitude, frequency and phase of three sines."""
    return np.column_stack([rng.uniform(*amplitude, 3), rng.uniform(*hz, 3), rng.uniform(0, 2 * np.pi, 3)])


def _waves(params: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Sum of sines (amplitude, Hz, phase per row) at the given times."""
    amp, hz, phase = params[:, 0], params[:, 1], params[:, 2]
    return (amp * np.sin(2 * np.pi * hz * times[:, None] + phase)).sum(axis=1)


def shown(demeanour: Demeanour, times: np.ndarray) -> np.ndarray:
    """Share of the felt emotion the face shows at each time, in [0, 1]: near 0 while the face is at rest."""
    return 1.0 / (1.0 + np.exp(-4.0 * (_waves(demeanour.showing, times) - demeanour.reserve)))


def corners(demeanour: Demeanour, times: np.ndarray) -> np.ndarray:
    """(n, 2) top-left (row, column) of the face in the frame at each time: a seat for each SEAT_S, where
    the head sways slowly."""
    seats = np.floor(times / SEAT_S).astype(np.int64)
    place = {
        int(k): np.random.default_rng([demeanour.seed, int(k)]).uniform(0.15, 0.85, 2)
        for k in np.unique(seats)
    }
    at = np.array([place[int(k)] for k in seats]).reshape(-1, 2)
    sway = np.column_stack([_waves(demeanour.sway[axis], times) for axis in range(2)])
    free = np.array([FRAME_H - FACE_PX, FRAME_W - FACE_PX])
    return np.rint(np.clip(at + sway, 0.0, 1.0) * free).astype(np.int64)


def frames(
    traits: Traits,
    valence: np.ndarray,
    arousal: np.ndarray,
    rng: np.random.Generator,
    noise: float,
    where: np.ndarray | None = None,
) -> np.ndarray:
    """(n, FRAME_H, FRAME_W) uint8 camera frames, each with one drawn face over a textured background: at
    `where` ((n, 2) top-left row and column, a session's corners), or anywhere (independent pictures)."""
    n = len(valence)
    faces = draw(traits, valence, arousal, rng, noise)
    gy = np.linspace(0.0, 1.0, FRAME_H)[:, None]
    out = np.empty((n, FRAME_H, FRAME_W), np.uint8)
    for i in range(n):
        tone = rng.uniform(0.2, 0.8) + rng.uniform(-0.15, 0.15) * gy
        background = np.clip(tone + rng.normal(0, 0.03, (FRAME_H, FRAME_W)), 0.0, 1.0)
        out[i] = (background * 255).astype(np.uint8)
        if where is None:
            r0 = rng.integers(0, FRAME_H - FACE_PX + 1)
            c0 = rng.integers(0, FRAME_W - FACE_PX + 1)
        else:
            r0, c0 = where[i]
        out[i, r0 : r0 + FACE_PX, c0 : c0 + FACE_PX] = faces[i]
    return out
