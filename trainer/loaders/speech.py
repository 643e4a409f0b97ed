"""Speech corpora as folders of audio files named as mmer_core.speech_files reads them (RAVDESS, CREMA-D,
TESS, <label>/<speaker>_<name>).

Any sample rate, bit depth and format libsndfile reads (WAV, FLAC); audio is resampled to the
speech spec's 16 kHz, silence at the ends is trimmed, and each utterance is cut
into the spec's 1 s windows every 0.5 s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmer_core.formats import read_audio
from mmer_core.modalities import SPECS
from mmer_core.preprocess import preprocess_batch
from mmer_core.speech_files import find_speech_files
from mmer_core.taxonomy import QUADRANTS
from trainer.data import Dataset

SPEC = SPECS["speech"]


def trim(x: np.ndarray, frame: int = 400, floor_db: float = -35.0) -> np.ndarray:
    """Cut leading and trailing frames quieter than floor_db below the loudest frame."""
    n = len(x) // frame
    if n == 0:
        return x
    energy = 10 * np.log10((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() + floor_db)
    return x[loud[0] * frame : (loud[-1] + 1) * frame] if loud.size else x[:0]


def windows(x: np.ndarray) -> list[np.ndarray]:
    """1 s windows every 0.5 s; an utterance shorter than a window is zero-padded to one."""
    win, hop = SPEC.window_samples, SPEC.hop_samples
    if len(x) < win:
        return [np.pad(x, (0, win - len(x)))] if len(x) > win // 4 else []
    return [x[i : i + win] for i in range(0, len(x) - win + 1, hop)]


def load_speech(root: Path, skip_misnamed: bool = False) -> Dataset:
    """Every audio file below root, labelled by its name, windowed and preprocessed."""
    files = find_speech_files(root, skip_misnamed=skip_misnamed)
    raws, labels, speakers, ends = [], [], [], []
    for file in files:
        for i, w in enumerate(windows(trim(read_audio(file.path)))):
            raws.append(w)
            labels.append(QUADRANTS.index(file.label))
            speakers.append(file.speaker)
            ends.append(SPEC.window_s + i * SPEC.hop_s)
    return Dataset(
        "speech", preprocess_batch("speech", raws), np.array(labels), np.array(speakers), np.array(ends, float),
        f"speech:{root} ({len(files)} files, {len(set(speakers))} speakers)",
    )  # fmt: skip
