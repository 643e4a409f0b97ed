"""DEAP preprocessed files written in DEAP's own layout (sNN.dat: a pickle of `data` trials x 40 channels x
samples at 128 Hz, 3 s pre-trial baseline first, and `labels` trials x 4 ratings on 1..9), with EEG drawn by
the synthetic generator so each trial's quadrant is really in its signal."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from mmer_core.formats import DEAP_CHANNELS, DEAP_PICK
from mmer_core.synthetic import Session, SessionConfig

RATE = 128
CHANNELS = 40  # 32 EEG + 8 peripheral, as in DEAP
# (valence, arousal) ratings on DEAP's 1..9 scale at the centre of each quadrant
RATINGS = {"happy": (7.0, 7.0), "angry": (3.0, 7.0), "sad": (3.0, 3.0), "calm": (7.0, 3.0)}


def write_deap_subject(
    path: Path, labels: list[str], trial_s: float, seed: int, baseline_s: float = 3.0, drawn: bool = True
) -> np.ndarray:
    """One sNN.dat with a trial per label (EEG drawn by the generator, or noise alone when not `drawn`);
    returns the (trials, 4) ratings written."""
    rng = np.random.default_rng(seed)
    session = Session(
        SessionConfig(
            path.stem,
            seed,
            len(labels) * (baseline_s + trial_s),
            segments=tuple((lab, baseline_s + trial_s) for lab in labels),
            transition_s=0.5,
        )
    )
    n = round((baseline_s + trial_s) * RATE)
    data = rng.normal(0.0, 5.0, (len(labels), CHANNELS, n)).astype(np.float32)
    for i in range(len(labels) if drawn else 0):
        t0 = i * (baseline_s + trial_s)
        data[i, DEAP_PICK] = session.samples("eeg", t0, t0 + n / RATE)
    ratings = np.array([[*RATINGS[lab], rng.uniform(1, 9), rng.uniform(1, 9)] for lab in labels])
    ratings[:, :2] += rng.uniform(-1.0, 1.0, (len(labels), 2))
    with path.open("wb") as fh:
        pickle.dump({"data": data, "labels": ratings}, fh, protocol=2)
    assert len(DEAP_CHANNELS) == 32
    return ratings


def write_deap_folder(
    root: Path, subjects: int, trials_per_label: int, trial_s: float, seed: int = 0
) -> Path:
    """root/s01.dat ... with every quadrant in `trials_per_label` trials per subject, in a shuffled order."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for s in range(subjects):
        labels = list(rng.permutation(list(RATINGS) * trials_per_label))
        write_deap_subject(root / f"s{s + 1:02d}.dat", labels, trial_s, seed * 100 + s)
    return root
