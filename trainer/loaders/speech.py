"""Speech corpora as folders of wav files: RAVDESS and TESS naming, or <label>/<speaker>_<name>.wav.

Any sample rate and bit depth the wav module reads; audio is resampled to the
speech spec's 16 kHz, silence at the ends is trimmed, and each utterance is cut
into the spec's 1 s windows every 0.5 s.
"""

from __future__ import annotations

import re
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from mmer_core.modalities import SPECS
from mmer_core.preprocess import preprocess_batch
from mmer_core.taxonomy import QUADRANTS, map_label
from trainer.data import Dataset

SPEC = SPECS["speech"]
RAVDESS = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.wav$")
TESS = re.compile(r"^([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)\.wav$")


def read_wav(path: Path) -> np.ndarray:
    """Mono float audio in [-1, 1] at the speech spec's rate."""
    with wave.open(str(path), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        dtype = np.int16 if width == 2 else np.int32
        x = np.frombuffer(raw, dtype).astype(np.float32) / float(np.iinfo(dtype).max)
    else:
        raise ValueError(f"{path}: unsupported sample width of {width} bytes")
    x = x.reshape(-1, channels).mean(axis=1)
    if rate != SPEC.sample_rate_hz:
        ratio = Fraction(int(SPEC.sample_rate_hz), rate).limit_denominator(1000)
        x = resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)
    return x


def label_and_speaker(path: Path, root: Path) -> tuple[str, str]:
    """(taxonomy label, speaker id) from the file's naming convention."""
    m = RAVDESS.match(path.name)
    if m:
        return map_label("ravdess", m.group(3)), f"actor{m.group(7)}"
    m = TESS.match(path.name)
    if m and m.group(3).lower() in {"angry", "disgust", "fear", "happy", "neutral", "ps", "sad"}:
        return map_label("tess", m.group(3).lower()), m.group(1).upper()
    rel = path.relative_to(root)
    if len(rel.parts) >= 2 and "_" in path.stem:
        return map_label("generic", rel.parts[-2]), path.stem.split("_", 1)[0]
    raise ValueError(f"{path}: name follows neither RAVDESS, TESS nor <label>/<speaker>_<name>.wav")


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


def load_speech(root: Path) -> Dataset:
    """Every wav file below root, labelled by its name, windowed and preprocessed."""
    files = sorted(root.rglob("*.wav"))
    if not files:
        raise ValueError(f"speech:{root}: no .wav files found")
    raws, labels, speakers, ends = [], [], [], []
    for path in files:
        label, speaker = label_and_speaker(path, root)
        for i, w in enumerate(windows(trim(read_wav(path)))):
            raws.append(w)
            labels.append(QUADRANTS.index(label))
            speakers.append(speaker)
            ends.append(SPEC.window_s + i * SPEC.hop_s)
    return Dataset(
        "speech", preprocess_batch("speech", raws), np.array(labels), np.array(speakers), np.array(ends, float),
        f"speech:{root} ({len(files)} files, {len(set(speakers))} speakers)",
    )  # fmt: skip
