"""WESAD subject pickles (S<n>/S<n>.pkl): wrist BVP -> beats -> HR windows, protocol labels 1-4.

The pickles are Python 2 dicts (latin-1): ``signal.wrist.BVP`` at 64 Hz and ``label`` at 700 Hz (0 transient,
1 baseline, 2 stress, 3 amusement, 4 meditation, 5-7 not part of the protocol). Windows whose labels are not
one protocol condition throughout are left out, so no window straddles two conditions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmer_core.formats import WESAD_BVP_HZ, WESAD_LABEL_HZ, WESAD_PROTOCOL, read_wesad
from mmer_core.modalities import SPECS
from mmer_core.preprocess.hr import rr_from_ppg
from mmer_core.taxonomy import QUADRANTS, map_label
from trainer.data import Dataset
from trainer.loaders.beats import STRIDE_S, BeatWindows, beats_in_window

SPEC = SPECS["hr"]


def load_wesad(root: Path) -> Dataset:
    """All subject pickles below root."""
    paths = sorted(Path(root).rglob("S*.pkl"))
    if not paths:
        raise ValueError(f"wesad:{root}: no S<n>.pkl subject files")
    windows = BeatWindows()
    for path in paths:
        subject, bvp, protocol = read_wesad(path)
        times, rr = rr_from_ppg(bvp, WESAD_BVP_HZ)
        t = SPEC.window_s
        duration = min(len(bvp) / WESAD_BVP_HZ, len(protocol) / WESAD_LABEL_HZ)
        while t <= duration:
            span = protocol[int((t - SPEC.window_s) * WESAD_LABEL_HZ) : int(t * WESAD_LABEL_HZ)]
            window = beats_in_window(times, rr, t)
            if span.size and span[0] in WESAD_PROTOCOL and np.all(span == span[0]) and window is not None:
                windows.add(window, QUADRANTS.index(map_label("wesad", int(span[0]))), subject, t)
            t += STRIDE_S
    if not windows.raws:
        raise ValueError(f"wesad:{root}: no window lies wholly in one protocol condition with enough beats")
    return windows.dataset(f"wesad:{root} ({len(set(windows.subjects))} subjects, beats from wrist BVP)")
