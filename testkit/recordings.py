"""Synthetic sessions rendered as sensor recording folders (edge_node.recording), for the bench and tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_node.recording import CHUNK_S, write_recording
from mmer_core.synthetic import Session, SessionConfig


def render_synthetic_recording(folder: Path, seed: int, seconds: float, subject: str = "s1") -> Path:
    """Every sensor stream of synthetic session `seed` over [0, seconds) as a recording folder, with its labels.

    Camera frames are drawn a chunk at a time, as the live synthetic source draws them (a frame's noise is
    seeded by the first frame of its chunk), so the replay gives the live source's windows."""
    session = Session(SessionConfig(subject, seed, duration_s=seconds))
    grid = np.arange(0.0, seconds, CHUNK_S)
    names = np.array([session.label_at(t + CHUNK_S - 1e-6) for t in grid])
    change = np.r_[True, names[1:] != names[:-1]]
    frames = [session.frames(t, t + CHUNK_S)[1] for t in grid]
    return write_recording(
        folder,
        eeg=session.samples("eeg", 0.0, seconds).T,
        speech=session.samples("speech", 0.0, seconds),
        image=np.concatenate(frames),
        wrist=session.wrist(0.0, seconds),
        labels=(grid[change], names[change]),
    )
