"""Empatica E4 session folders as the device exports them, with a labels.csv of labelled intervals.

Each subject folder holds BVP.csv (row 1 session start, Unix s; row 2 rate, Hz;
then samples). Beats are detected in the BVP with the shared rr_from_ppg (the
E4's own IBI.csv drops beats whenever it is unsure, often for minutes), then
cut into the HR spec's windows; a window is labelled when it lies wholly in
one labelled interval of labels.csv (subject, start_unix_utc, end_unix_utc,
label) and left out otherwise.
"""

from __future__ import annotations

from pathlib import Path

from mmer_core.formats import read_e4_labels, read_e4_signal
from mmer_core.modalities import SPECS
from mmer_core.preprocess.hr import rr_from_ppg
from mmer_core.taxonomy import QUADRANTS
from trainer.data import Dataset
from trainer.loaders.beats import STRIDE_S, BeatWindows, beats_in_window

SPEC = SPECS["hr"]


def load_e4(root: Path) -> Dataset:
    """All labelled subjects below root."""
    labels_path = root / "labels.csv"
    if not labels_path.is_file():
        raise ValueError(f"e4:{root}: no labels.csv")
    intervals = read_e4_labels(labels_path)
    windows = BeatWindows()
    for subject, spans in sorted(intervals.items()):
        bvp_path = root / subject / "BVP.csv"
        if not bvp_path.is_file():
            raise ValueError(f"e4:{root}: labels name {subject} but {bvp_path} is missing")
        t0, fs, bvp = read_e4_signal(bvp_path)
        times, rr = rr_from_ppg(bvp, fs)
        times = times + t0
        for start, end, label in spans:
            t = start + SPEC.window_s
            while t <= end:
                window = beats_in_window(times, rr, t)
                if window is not None:
                    windows.add(window, QUADRANTS.index(label), subject, t)
                t += STRIDE_S
    if not windows.raws:
        raise ValueError(f"e4:{root}: no labelled window with enough beats")
    return windows.dataset(f"e4:{root} ({len(set(windows.subjects))} subjects, beats from BVP)")
