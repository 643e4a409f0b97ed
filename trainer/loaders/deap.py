"""DEAP preprocessed Python files (s01.dat ... s32.dat): 32-channel EEG at 128 Hz, valence/arousal ratings.

Each file is a Python 2 pickle of ``data`` (40 trials, 40 channels, 8064 samples: 3 s pre-trial baseline then
60 s) and ``labels`` (40 trials: valence, arousal, dominance, liking on 1-9). The 14 channels of the EEG spec
(Emotiv EPOC positions) are picked from DEAP's 32 by name; each trial's label is its valence/arousal quadrant
split at the scale midpoint 5, and every window of the trial carries it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from mmer_core.modalities import EEG_CHANNELS, SPECS
from mmer_core.preprocess import preprocess_batch
from mmer_core.taxonomy import QUADRANTS, va_to_label
from trainer.data import Dataset

SPEC = SPECS["eeg"]
DEAP_CHANNELS = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1", "Oz", "Pz",
    "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)  # fmt: skip
PICK = [DEAP_CHANNELS.index(c) for c in EEG_CHANNELS]
BASELINE_S = 3.0
MIDPOINT = 5.0
STRIDE_S = 2.0


def read_subject(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(trials, 32 EEG channels, samples) and (trials, 4) ratings of one DEAP file."""
    with path.open("rb") as fh:
        try:
            raw = pickle.load(fh, encoding="latin1")
        except Exception as exc:
            raise ValueError(f"deap:{path}: not a readable pickle ({exc})") from None
    try:
        data, ratings = np.asarray(raw["data"], dtype=np.float64), np.asarray(raw["labels"], dtype=np.float64)
    except (KeyError, TypeError):
        raise ValueError(f"deap:{path}: expected a dict with 'data' and 'labels'") from None
    if data.ndim != 3 or data.shape[1] < len(DEAP_CHANNELS) or ratings.shape != (data.shape[0], 4):
        raise ValueError(f"deap:{path}: data {data.shape} / labels {ratings.shape} are not DEAP's layout")
    return data[:, : len(DEAP_CHANNELS)], ratings


def load_deap(root: Path) -> Dataset:
    """Every s??.dat below root; subject id = file stem."""
    paths = sorted(Path(root).rglob("s*.dat"))
    if not paths:
        raise ValueError(f"deap:{root}: no s<nn>.dat files")
    fs = SPEC.sample_rate_hz
    n, stride, skip = int(SPEC.window_s * fs), int(STRIDE_S * fs), int(BASELINE_S * fs)
    raws, labels, subjects, ends = [], [], [], []
    for path in paths:
        data, ratings = read_subject(path)
        for trial, (valence, arousal, _, _) in zip(data, ratings, strict=True):
            label = QUADRANTS.index(va_to_label(valence, arousal, MIDPOINT))
            eeg = trial[PICK, skip:]
            for start in range(0, eeg.shape[1] - n + 1, stride):
                raws.append(eeg[:, start : start + n])
                labels.append(label)
                subjects.append(path.stem)
                ends.append((start + n) / fs)
    if not raws:
        raise ValueError(f"deap:{root}: trials shorter than one {SPEC.window_s:g} s window")
    return Dataset(
        "eeg", preprocess_batch("eeg", raws), np.array(labels), np.array(subjects), np.array(ends),
        f"deap:{root} ({len(paths)} subjects, 14 of 32 channels, V/A split at {MIDPOINT:g})",
    )  # fmt: skip
