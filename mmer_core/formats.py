"""Readers of the public recording formats that both the trainer (loaders) and the edge node (replay) read.

Only parsing lives here: files in, arrays and labels out, with a ValueError
naming the file and what is wrong. What a loader or a replay then does with
them (windows, labels per window, pacing) is theirs.
"""

from __future__ import annotations

import csv
import pickle
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from mmer_core.modalities import EEG_CHANNELS, SPECS
from mmer_core.speech_files import label_file
from mmer_core.taxonomy import map_label

SPEECH_RATE = SPECS["speech"].sample_rate_hz


# ------------------------------------------------------------------ Empatica E4
def read_e4_signal(path: Path) -> tuple[float, float, np.ndarray]:
    """(start Unix s, rate Hz, samples) of an E4 single-column signal file (BVP.csv, HR.csv, EDA.csv ...)."""
    try:
        table = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not an E4 signal file ({exc})") from None
    if table.shape[1] != 1:
        raise ValueError(f"{path}: not a single-signal E4 file: {table.shape[1]} columns, expected 1")
    values = table[:, 0]
    if len(values) < 3 or not np.isfinite(values[1]) or values[1] <= 0:
        raise ValueError(f"{path}: not an E4 signal file (start, rate, samples...)")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{path}: {bad.size} NaN or infinite values (first on line {bad[0] + 1})")
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
    """Mono float32 audio in [-1, 1] at the speech spec's 16 kHz, read with the standard library's wave module
    (8-, 16- and 32-bit PCM): what the edge's replay reads without any audio library installed."""
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
    return to_speech_rate(x.reshape(-1, channels), rate, path)


def read_audio(path: Path) -> np.ndarray:
    """Mono float32 audio in [-1, 1] at 16 kHz from any file libsndfile reads (WAV of any depth, FLAC, ...).

    soundfile is imported only here: it comes with the trainer, not with the edge.
    """
    try:
        import soundfile
    except ImportError:
        raise ImportError(
            f"{path}: reading audio files needs soundfile: pip install 'mmer[trainer]'"
        ) from None
    try:
        x, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a readable audio file ({exc})") from None
    return to_speech_rate(x, rate, path)


def to_speech_rate(x: np.ndarray, rate: int, path: Path) -> np.ndarray:
    """(samples, channels) audio as one channel at the speech spec's rate.

    Any other rate is resampled with scipy.signal.resample_poly, imported only
    then: the edge node otherwise never loads scipy.
    """
    x = x.mean(axis=1).astype(np.float32)
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
    """(taxonomy label, speaker id) from the file's name (mmer_core.speech_files' naming schemes)."""
    found = label_file(path, root)
    return found.label, found.speaker


# ------------------------------------------------------------------ DEAP
DEAP_CHANNELS = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1", "Oz", "Pz",
    "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)  # fmt: skip
DEAP_PICK = [DEAP_CHANNELS.index(c) for c in EEG_CHANNELS]  # the EEG spec's 14 channels among DEAP's 32
DEAP_BASELINE_S = 3.0  # every trial starts with 3 s of pre-trial baseline
DEAP_MIDPOINT = 5.0  # ratings run 1..9


def read_deap_subject(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(trials, 32 EEG channels, samples) and (trials, 4) ratings of one DEAP preprocessed file (sNN.dat).

    The file is a Python 2 pickle of `data` (40 trials, 40 channels, 8064 samples at 128 Hz) and
    `labels` (valence, arousal, dominance, liking on 1..9).
    """
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


# ------------------------------------------------------------------ FER2013
def read_fer2013(path: Path) -> Iterator[tuple[np.ndarray, str]]:
    """(square grey image in [0, 1], taxonomy label) per row of a FER2013 csv (emotion, pixels[, Usage]), lazily."""
    with Path(path).open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"emotion", "pixels"} <= set(reader.fieldnames):
            raise ValueError(f"faces:{path}: FER2013 csv needs 'emotion' and 'pixels' columns")
        for i, row in enumerate(reader, start=2):
            pixels = np.array(row["pixels"].split(), dtype=np.float32)
            side = int(np.rint(np.sqrt(pixels.size)))
            if side * side != pixels.size or side == 0:
                raise ValueError(f"faces:{path}: line {i} has {pixels.size} pixels, not a square image")
            yield (
                (pixels.reshape(side, side) / 255.0).astype(np.float32),
                map_label("fer2013", row["emotion"]),
            )


# ------------------------------------------------------------------ WESAD
WESAD_HZ = {"BVP": 64.0, "EDA": 4.0, "TEMP": 4.0}  # the wrist device (an Empatica E4) channels mmer reads
WESAD_LABEL_HZ = 700.0
WESAD_PROTOCOL = {1, 2, 3, 4}  # baseline, stress, amusement, meditation; 0 and 5-7 are not conditions


@dataclass(frozen=True)
class WesadRecording:
    """A WESAD subject's wrist channels at their own rates (EDA/TEMP None when the pickle lacks them) and
    the protocol's label codes at 700 Hz."""

    subject: str
    bvp: np.ndarray
    eda: np.ndarray | None
    temp: np.ndarray | None
    protocol: np.ndarray


def read_wesad(path: Path) -> WesadRecording:
    """The wrist channels and protocol labels of a WESAD subject pickle (S<n>.pkl, a latin-1 Python 2 dict)."""
    with path.open("rb") as fh:
        try:
            data = pickle.load(fh, encoding="latin1")
        except Exception as exc:
            raise ValueError(f"wesad:{path}: not a readable pickle ({exc})") from None
    try:
        wrist, label = data["signal"]["wrist"], data["label"]
        bvp = wrist["BVP"]
    except (KeyError, TypeError):
        raise ValueError(f"wesad:{path}: missing signal.wrist.BVP or label") from None

    def channel(name: str) -> np.ndarray | None:
        return np.asarray(wrist[name], dtype=np.float64).reshape(-1) if name in wrist else None

    return WesadRecording(
        str(data.get("subject", path.stem)),
        np.asarray(bvp, dtype=np.float64).reshape(-1),
        channel("EDA"),
        channel("TEMP"),
        np.asarray(label).reshape(-1).astype(int),
    )
