"""WESAD subject pickles (S<n>/S<n>.pkl): wrist BVP -> beats -> HR windows, protocol labels 1-4.

The pickles are Python 2 dicts (latin-1): ``signal.wrist.BVP`` at 64 Hz and ``label`` at 700 Hz (0 transient,
1 baseline, 2 stress, 3 amusement, 4 meditation, 5-7 not part of the protocol). Windows whose labels are not
one protocol condition throughout are left out, so no window straddles two conditions.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.preprocess.hr import rr_from_ppg
from mmer_core.taxonomy import QUADRANTS, map_label
from trainer.data import Dataset
from trainer.loaders.beats import STRIDE_S, BeatWindows, beats_in_window

SPEC = SPECS["hr"]
BVP_HZ = 64.0
LABEL_HZ = 700.0
PROTOCOL = {1, 2, 3, 4}


def read_pickle(path: Path) -> dict:
    """One subject's dict; ValueError when the file is not a WESAD pickle."""
    with path.open("rb") as fh:
        try:
            data = pickle.load(fh, encoding="latin1")
        except Exception as exc:
            raise ValueError(f"wesad:{path}: not a readable pickle ({exc})") from None
    try:
        data["signal"]["wrist"]["BVP"], data["label"]
    except (KeyError, TypeError):
        raise ValueError(f"wesad:{path}: missing signal.wrist.BVP or label") from None
    return data


def load_wesad(root: Path) -> Dataset:
    """All subject pickles below root."""
    paths = sorted(Path(root).rglob("S*.pkl"))
    if not paths:
        raise ValueError(f"wesad:{root}: no S<n>.pkl subject files")
    windows = BeatWindows()
    for path in paths:
        data = read_pickle(path)
        subject = str(data.get("subject", path.stem))
        bvp = np.asarray(data["signal"]["wrist"]["BVP"], dtype=np.float64).reshape(-1)
        protocol = np.asarray(data["label"]).reshape(-1).astype(int)
        times, rr = rr_from_ppg(bvp, BVP_HZ)
        t = SPEC.window_s
        duration = min(len(bvp) / BVP_HZ, len(protocol) / LABEL_HZ)
        while t <= duration:
            span = protocol[int((t - SPEC.window_s) * LABEL_HZ) : int(t * LABEL_HZ)]
            window = beats_in_window(times, rr, t)
            if span.size and span[0] in PROTOCOL and np.all(span == span[0]) and window is not None:
                windows.add(window, QUADRANTS.index(map_label("wesad", int(span[0]))), subject, t)
            t += STRIDE_S
    if not windows.raws:
        raise ValueError(f"wesad:{root}: no window lies wholly in one protocol condition with enough beats")
    return windows.dataset(f"wesad:{root} ({len(set(windows.subjects))} subjects, beats from wrist BVP)")
