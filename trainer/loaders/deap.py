"""DEAP preprocessed Python files (s01.dat ... s32.dat): 32-channel EEG at 128 Hz, valence/arousal ratings.

Each file is a Python 2 pickle of ``data`` (40 trials, 40 channels, 8064 samples: 3 s pre-trial baseline then
60 s) and ``labels`` (40 trials: valence, arousal, dominance, liking on 1-9). The 14 channels of the EEG spec
(Emotiv EPOC positions) are picked from DEAP's 32 by name; each trial's label is its valence/arousal quadrant
split at the scale midpoint 5, and every window of the trial carries it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmer_core.file_tree import files_below
from mmer_core.formats import DEAP_BASELINE_S, DEAP_MIDPOINT, DEAP_PICK, read_deap_subject
from mmer_core.modalities import SPECS
from mmer_core.preprocess import preprocess_batch
from mmer_core.taxonomy import QUADRANTS, va_to_label
from trainer.data import Dataset

SPEC = SPECS["eeg"]
STRIDE_S = 2.0


def load_deap(root: Path) -> Dataset:
    """Every s??.dat below root, in order, each subject's windows in recording order; subject id = file stem.

    Each file is preprocessed on its own, so memory holds one subject's raw EEG at a time."""
    paths = files_below(Path(root), "s*.dat")
    if not paths:
        raise ValueError(f"deap:{root}: no s<nn>.dat files")
    parts = [_subject_windows(path) for path in paths]
    if not any(len(y) for _, y, _ in parts):
        raise ValueError(f"deap:{root}: trials shorter than one {SPEC.window_s:g} s window")
    x = np.concatenate([f for f, _, _ in parts])
    y = np.concatenate([labels for _, labels, _ in parts])
    ends = np.concatenate([t for _, _, t in parts])
    subjects = np.concatenate(
        [np.full(len(labels), path.stem) for path, (_, labels, _) in zip(paths, parts, strict=True)]
    )
    return Dataset(
        "eeg",
        x,
        y,
        subjects,
        ends,
        f"deap:{root} ({len(paths)} subjects, 14 of 32 channels, V/A split at {DEAP_MIDPOINT:g})",
    )


def _subject_windows(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, window end times on one running clock) of one subject's trials, after each
    trial's pre-trial baseline, in STRIDE_S steps."""
    fs = SPEC.sample_rate_hz
    n, stride, skip = int(SPEC.window_s * fs), int(STRIDE_S * fs), int(DEAP_BASELINE_S * fs)
    data, ratings = read_deap_subject(path)
    raws, labels, ends = [], [], []
    clock = 0.0
    for trial, (valence, arousal, _, _) in zip(data, ratings, strict=True):
        label = QUADRANTS.index(va_to_label(valence, arousal, DEAP_MIDPOINT))
        eeg = trial[DEAP_PICK, skip:]
        for start in range(0, eeg.shape[1] - n + 1, stride):
            raws.append(eeg[:, start : start + n])
            labels.append(label)
            ends.append(clock + (start + n) / fs)
        clock += eeg.shape[1] / fs
    x = preprocess_batch("eeg", raws)
    return x, np.array(labels, dtype=np.int64), np.array(ends)
