"""Readers of the public recording formats that both the trainer (loaders) and the edge node (replay) read.

Only parsing lives here: files in, arrays and labels out, with a ValueError
naming the file and what is wrong. What a loader or a replay then does with
them (windows, labels per window, pacing) is theirs.
"""

from __future__ import annotations

import csv
import re
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.taxonomy import map_label

SPEECH_RATE = SPECS["speech"].sample_rate_hz
RAVDESS = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.wav$")
TESS = re.compile(r"^([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)\.wav$")
TESS_EMOTIONS = {"angry", "disgust", "fear", "happy", "neutral", "ps", "sad"}


# ------------------------------------------------------------------ Empatica E4
def read_e4_signal(path: Path) -> tuple[float, float, np.ndarray]:
    """(start Unix s, rate Hz, samples) of an E4 single-column signal file (BVP.csv, HR.csv, EDA.csv ...)."""
    try:
        values = np.loadtxt(path, delimiter=",", ndmin=2)[:, 0]
    except ValueError as exc:
        raise ValueError(f"{path}: not an E4 signal file ({exc})") from None
    if len(values) < 3 or values[1] <= 0:
        raise ValueError(f"{path}: not an E4 signal file (start, rate, samples...)")
    return float(values[0]), float(values[1]), values[2:]


def read_e4_ibi(path: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """(start Unix s, beat times s from start, inter-beat intervals s) of an E4 IBI.csv.

    Row 1 is `start, IBI`; every other row `offset_s, interval_s`, the offset
    being the time of the beat that ends the interval.
    """
    with path.open() as fh:
        head = fh.readline().split(",")
        try:
            start = float(head[0])
        except ValueError:
            raise ValueError(f"{path}: not an E4 IBI file (first row must be `start, IBI`)") from None
        rows = np.loadtxt(fh, delimiter=",", ndmin=2)
    if rows.size == 0:
        return start, np.empty(0), np.empty(0)
    if rows.shape[1] != 2:
        raise ValueError(f"{path}: E4 IBI rows must be `offset_s, interval_s`, got {rows.shape[1]} columns")
    return start, rows[:, 0], rows[:, 1]


def read_e4_labels(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """Labelled intervals per subject of a labels.csv (subject, start_unix_utc, end_unix_utc, label),
    labels mapped into the taxonomy."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            try:
                start, end = float(row["start_unix_utc"]), float(row["end_unix_utc"])
                subject, label = row["subject"].strip(), map_label("e4", row["label"])
            except KeyError as exc:
                raise ValueError(f"{path}: missing column {exc}") from None
            out.setdefault(subject, []).append((start, end, label))
    return out


# ------------------------------------------------------------------ speech wav folders
def read_wav(path: Path) -> np.ndarray:
    """Mono float32 audio in [-1, 1] at the speech spec's 16 kHz.

    Any other rate is resampled with scipy.signal.resample_poly, imported only
    then: the edge node otherwise never loads scipy.
    """
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
    if rate != SPEECH_RATE:
        try:
            from scipy.signal import resample_poly
        except ImportError:
            raise ImportError(
                f"{path}: resampling {rate} Hz audio needs scipy: pip install 'mmer[ppg]'"
            ) from None

        ratio = Fraction(int(SPEECH_RATE), rate).limit_denominator(1000)
        x = resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)
    return x


def speech_label_and_speaker(path: Path, root: Path) -> tuple[str, str]:
    """(taxonomy label, speaker id) from RAVDESS or TESS naming, or <label>/<speaker>_<name>.wav."""
    m = RAVDESS.match(path.name)
    if m:
        return map_label("ravdess", m.group(3)), f"actor{m.group(7)}"
    m = TESS.match(path.name)
    if m and m.group(3).lower() in TESS_EMOTIONS:
        return map_label("tess", m.group(3).lower()), m.group(1).upper()
    rel = path.relative_to(root)
    if len(rel.parts) >= 2 and "_" in path.stem:
        return map_label("generic", rel.parts[-2]), path.stem.split("_", 1)[0]
    raise ValueError(f"{path}: name follows neither RAVDESS, TESS nor <label>/<speaker>_<name>.wav")
