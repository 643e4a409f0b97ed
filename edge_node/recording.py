"""Sensor recordings: what a device's sensors delivered, one `.npy` file per stream, replayed chunk by chunk.

A recording folder holds any of these files (times in seconds from the recording's start):

| file | array | what |
| --- | --- | --- |
| `eeg.npy` | (n, channels) | EEG samples at the eeg spec's rate, one row per sample time |
| `speech.npy` | (n,) float | microphone audio at the speech spec's rate, in [-1, 1] |
| `image.npy` | (n, H, W) uint8 | camera frames at the image spec's rate |
| `hr_beats.npy` | (n, 2) | heart beats: [beat_time_s, rr_s] |
| `hr_eda.npy`, `hr_temp.npy` | (n, 2) | optional skin conductance (microsiemens) and temperature (degrees C) |
| `label_times.npy`, `labels.npy` | (k,), (k,) str | optional: the true label from each time on |

Replay reads the regular streams a chunk at a time from the file (no mapping, so memory stays one chunk
however long the recording) and hands the chunks to the same Windower as a live sensor: the node windows,
segments and preprocesses exactly as on a device, and what it costs to produce the data is not its cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.windowing import SensorChunk, Window, Windower
from mmer_core.wrist import WristData

CHUNK_S = 0.2  # what a sensor driver hands over at a time
REGULAR = ("eeg", "speech", "image")
WRIST_FILES = {"beats": "hr_beats.npy", "eda": "hr_eda.npy", "temp": "hr_temp.npy"}
MARKERS = ("eeg.npy", "speech.npy", "image.npy", WRIST_FILES["beats"])


def is_recording(folder: Path) -> bool:
    """True when the folder holds at least one sensor stream file of a recording."""
    return folder.is_dir() and any((folder / name).is_file() for name in MARKERS)


def write_recording(
    folder: Path,
    eeg: np.ndarray | None = None,
    speech: np.ndarray | None = None,
    image: np.ndarray | None = None,
    wrist: WristData | None = None,
    labels: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write the given streams as a recording folder (eeg as (n, channels)); ValueError on a malformed one."""
    folder.mkdir(parents=True, exist_ok=True)
    if eeg is not None:
        eeg = np.asarray(eeg)
        if eeg.dtype.kind != "f" or eeg.ndim != 2 or eeg.shape[1] != SPECS["eeg"].channels:
            raise ValueError(f"recording eeg: expected (n, {SPECS['eeg'].channels}), got {eeg.shape}")
        np.save(folder / "eeg.npy", np.ascontiguousarray(eeg))
    if speech is not None:
        speech = np.asarray(speech, dtype=np.float32)
        if speech.ndim != 1:
            raise ValueError(f"recording speech: expected (n,) samples, got {speech.shape}")
        np.save(folder / "speech.npy", speech)
    if image is not None:
        image = np.asarray(image)
        if image.ndim != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"recording image: expected (n, H, W) uint8 frames, got {image.shape} {image.dtype}"
            )
        np.save(folder / "image.npy", image)
    if wrist is not None:
        for channel, name in WRIST_FILES.items():
            if (arr := getattr(wrist, channel)) is not None:
                np.save(folder / name, arr)
    if labels is not None:
        times, names = np.asarray(labels[0], dtype=np.float64), np.asarray(labels[1], dtype=str)
        if times.shape != names.shape or times.ndim != 1 or np.any(np.diff(times) < 0):
            raise ValueError("recording labels: label_times and labels must be equal-length, times ascending")
        np.save(folder / "label_times.npy", times)
        np.save(folder / "labels.npy", names)
    return folder


class _Stream:
    """One regular stream read from its .npy file, `rows` at a time (a row: one sample time or one frame)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: BinaryIO = path.open("rb")
        try:
            version = np.lib.format.read_magic(self.file)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, self.dtype = read_header(self.file)
        except ValueError as exc:
            self.file.close()
            raise ValueError(f"recording {path}: not a .npy array ({exc})") from None
        if fortran or self.dtype.hasobject:
            self.file.close()
            raise ValueError(f"recording {path}: must be a C-ordered numeric array")
        self.shape = tuple(shape)
        self.row_shape = self.shape[1:]
        self.row_items = int(np.prod(self.row_shape, dtype=np.int64))
        self.rows = self.shape[0] if self.shape else 0

    def read(self, rows: int) -> np.ndarray:
        """The next `rows` rows (fewer at the end of the file)."""
        data = np.fromfile(self.file, dtype=self.dtype, count=rows * self.row_items)
        return data.reshape(-1, *self.row_shape)

    def close(self) -> None:
        self.file.close()


def _open_regular(folder: Path, modality: str) -> _Stream:
    stream = _Stream(folder / f"{modality}.npy")
    spec = SPECS[modality]
    expected = {"eeg": (spec.channels,), "speech": ()}.get(modality)
    if (expected is not None and stream.row_shape != expected) or (
        modality == "image" and (len(stream.row_shape) != 2 or stream.dtype != np.uint8)
    ):
        stream.close()
        want = {"eeg": f"(n, {spec.channels})", "speech": "(n,)", "image": "(n, H, W) uint8"}[modality]
        raise ValueError(f"recording {stream.path}: expected {want}, got {stream.shape} {stream.dtype}")
    return stream


def _load_wrist(folder: Path) -> WristData:
    try:
        channels = {
            c: np.load(folder / name, allow_pickle=False) if (folder / name).is_file() else None
            for c, name in WRIST_FILES.items()
        }
        for channel, arr in channels.items():
            if arr is not None and arr.ndim == 2 and arr.shape[1] == 2 and np.any(np.diff(arr[:, 0]) < 0):
                raise ValueError(f"{channel} times must be in ascending order")
        return WristData(**channels)
    except ValueError as exc:
        raise ValueError(f"recording {folder}: hr: {exc}") from None


def _labeller(folder: Path) -> Callable[[float], str | None]:
    """label_at(t): the recording's true label at time t, or None when it has no labels."""
    present = [(folder / name).is_file() for name in ("label_times.npy", "labels.npy")]
    if not any(present):
        return lambda t: None
    if not all(present):
        raise ValueError(f"recording {folder}: labels need both label_times.npy and labels.npy")
    times = np.load(folder / "label_times.npy", allow_pickle=False)
    names = np.load(folder / "labels.npy", allow_pickle=False)
    if times.shape != names.shape or times.ndim != 1:
        raise ValueError(f"recording {folder}: label_times.npy and labels.npy differ in length")
    if np.any(np.diff(times) < 0):
        raise ValueError(f"recording {folder}: label_times.npy must be in ascending order")

    def label_at(t: float) -> str | None:
        i = int(np.searchsorted(times, t, side="right")) - 1
        return str(names[i]) if i >= 0 else None

    return label_at


def replay_recording(folder: Path, modalities: Sequence[str]) -> Iterator[Window]:
    """Windows of a recording folder in order of their end; ValueError now when a modality's stream is missing
    or malformed."""
    missing = [
        m for m in modalities if not (folder / (WRIST_FILES["beats"] if m == "hr" else f"{m}.npy")).is_file()
    ]
    if missing:
        raise ValueError(f"source replay:{folder}: the recording has no stream for {', '.join(missing)}")
    streams: dict[str, _Stream] = {}
    try:
        for m in modalities:
            if m in REGULAR:
                streams[m] = _open_regular(folder, m)
        wrist = _load_wrist(folder) if "hr" in modalities else None
        label_at = _labeller(folder)
    except Exception:
        for s in streams.values():
            s.close()
        raise
    return _chunks(modalities, streams, wrist, label_at)


def _chunks(
    modalities: Sequence[str],
    streams: dict[str, _Stream],
    wrist: WristData | None,
    label_at: Callable[[float], str | None],
) -> Iterator[Window]:
    windowers = {m: Windower(SPECS[m]) for m in modalities}
    duration = max(
        [s.rows / SPECS[m].sample_rate_hz for m, s in streams.items()]
        + ([float(wrist.beats[-1, 0])] if wrist is not None and len(wrist.beats) else []),
        default=0.0,
    )
    read = dict.fromkeys(streams, 0)
    try:
        for i in range(int(np.ceil(duration / CHUNK_S - 1e-9))):
            t0, t1 = i * CHUNK_S, (i + 1) * CHUNK_S
            label = label_at(t1 - 1e-6)
            for m in modalities:
                if m == "hr":
                    chunk = SensorChunk("hr", t0, t1, wrist.between(t0, t1), label)
                else:
                    rate = SPECS[m].sample_rate_hz
                    rows = round(t1 * rate) - read[m]
                    data = streams[m].read(rows)
                    if not len(data):
                        continue
                    start = read[m] / rate
                    read[m] += len(data)
                    data = data.T if m == "eeg" else data
                    chunk = SensorChunk(m, start, read[m] / rate, data, label)
                yield from windowers[m].push(chunk)
        for w in windowers.values():
            yield from w.flush()
    finally:
        for s in streams.values():
            s.close()
