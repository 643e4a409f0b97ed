"""Labelled face folders drawn by the synthetic face generator: known emotions, several persons, real PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmer_core.synthetic import face
from mmer_core.synthetic.traits import sample_traits

# (valence, arousal) at the centre of each quadrant
EXPRESSIONS = {"happy": (0.8, 0.7), "angry": (-0.8, 0.7), "sad": (-0.8, -0.7), "calm": (0.7, -0.7)}


def write_face_folder(root: Path, persons: int, per_label: int, seed: int = 0, noise: float = 0.5) -> Path:
    """root/<label>/p<NN>_<k>.png: each person's faces of every quadrant, each in a larger camera frame."""
    import cv2

    rng = np.random.default_rng(seed)
    for p in range(persons):
        traits = sample_traits(rng)
        for label, (v, a) in EXPRESSIONS.items():
            (root / label).mkdir(parents=True, exist_ok=True)
            frames = face.frames(traits, np.full(per_label, v), np.full(per_label, a), rng, noise)
            for k, frame in enumerate(frames):
                cv2.imwrite(str(root / label / f"p{p:02d}_{k}.png"), frame)
    return root


def face_frame(seed: int = 0, grey: bool = True) -> np.ndarray:
    """One noise-free synthetic camera frame with a face somewhere in it: (H, W) uint8, or (H, W, 3) RGB."""
    rng = np.random.default_rng(seed)
    frame = face.frames(sample_traits(rng), np.array([0.5]), np.array([0.5]), rng, 0.0)[0]
    return frame if grey else np.repeat(frame[..., None], 3, axis=2)
