"""Empatica E4 sessions: folders as the device exports them, with a labels.csv of labelled intervals, or
WESAD subject pickles (whose wrist device is an E4, labelled by the study protocol).

Each labelled subject's session is read and windowed by mmer_core.e4, exactly as the edge's replay of the
session and the e4 yardstick do (beats from BVP, EDA and TEMP when present); a window is kept
when it lies wholly in one labelled interval (a labels.csv row, or one WESAD protocol condition)
and the edge accepts it (enough plausible beats). Windows come in recording order per subject, the order
a wearer baseline sees them in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer.data import Dataset
from trainer.yardstick.e4_windows import labelled_sessions, session_windows


def load_e4(root: Path) -> Dataset:
    """All labelled subjects below root; ValueError naming what is missing or unreadable."""
    x, y, subjects, ends = [], [], [], []
    for source in labelled_sessions(root):
        s = session_windows(source)
        keep = (s.y >= 0) & np.all(np.isfinite(s.features), axis=1)
        x.append(s.features[keep])
        y.append(s.y[keep])
        subjects.append(np.full(int(keep.sum()), s.person))
        ends.append(s.t_end[keep])
    if not sum(len(part) for part in y):
        raise ValueError(f"e4:{root}: no labelled window with enough beats")
    return Dataset(
        "hr",
        np.concatenate(x),
        np.concatenate(y),
        np.concatenate(subjects),
        np.concatenate(ends),
        f"{root} ({len(y)} E4 wrist sessions, 60 s windows: beats from BVP, EDA, skin temperature)",
    )
