"""Sensor chunks in, model windows out: the same windowing for live sensors, replays and synthetic data.

Regular-rate modalities keep a ring of the most recent samples; heart rate
keeps the recent beats; image frames are windows on their own. Memory is
bounded by one window per modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmer_core.modalities import ModalitySpec
from mmer_core.wrist import CHANNELS, WristData


@dataclass(frozen=True)
class SensorChunk:
    """Consecutive sensor data of one modality.

    Times are seconds on the session clock. data: hr -> mmer_core.wrist.WristData
    holding every channel the device has up to t_end (or just the beats as (n_beats, 2)
    rows of [beat_time_s, rr_s]); eeg -> (channels, n); speech -> (n,); image ->
    (n_frames, H, W) with frames evenly spaced in [t_start, t_end).
    """

    modality: str
    t_start: float
    t_end: float
    data: np.ndarray | WristData
    label: str | None = None


@dataclass(frozen=True)
class Window:
    """One model window of raw data (formats in mmer_core.preprocess), with its true label if known."""

    modality: str
    t_start: float
    t_end: float
    data: np.ndarray | WristData
    label: str | None = None


class Windower:
    """Cuts one modality's chunks into windows of spec.window_s every spec.hop_s, or into utterances."""

    def __init__(self, spec: ModalitySpec) -> None:
        self.spec = spec
        self._utterances = None
        self._stream_t0 = 0.0
        self._label: str | None = None
        self._t_next_end: float | None = None
        self._t_last: float | None = None
        self._buf: np.ndarray | None = None
        self._buf_t0 = 0.0
        self._wrist = WristData(np.empty((0, 2)))

    def push(self, chunk: SensorChunk) -> list[Window]:
        """Add a chunk; return every window completed by it, in order."""
        if chunk.modality != self.spec.name:
            raise ValueError(f"{self.spec.name}: chunk of modality {chunk.modality!r} pushed to its windower")
        if not chunk.t_end > chunk.t_start:
            raise ValueError(
                f"{self.spec.name}: chunk ends ({chunk.t_end}) before it starts ({chunk.t_start})"
            )
        tol = 1e-6 + (1.0 / self.spec.sample_rate_hz if self.spec.sample_rate_hz else 0.0) * 0.5
        if self._t_last is not None and chunk.t_start < self._t_last - tol:
            raise ValueError(
                f"{self.spec.name}: chunk starting at {chunk.t_start:.3f} s overlaps or precedes the previous "
                f"one ending at {self._t_last:.3f} s"
            )
        self._t_last = chunk.t_end
        if self.spec.kind == "frames":
            return self._frames(chunk)
        if self.spec.kind == "events":
            return self._events(chunk)
        if self.spec.kind == "utterances":
            return self._utterance_windows(chunk)
        return self._regular(chunk)

    def flush(self) -> list[Window]:
        """End of the stream: the utterance in progress, if any (other kinds hold no partial window worth
        scoring)."""
        if self._utterances is None:
            return []
        out = self._as_windows(self._utterances.flush(), self._label)
        self._utterances = None
        return out

    def _utterance_windows(self, chunk: SensorChunk) -> list[Window]:
        """One window per utterance that ended in this chunk; a gap in the audio ends the one in progress."""
        from mmer_core.preprocess.speech import Utterances

        data = np.asarray(chunk.data)
        if data.ndim != 1:
            raise ValueError(f"{self.spec.name}: chunk data must be 1-D samples, got shape {data.shape}")
        rate = self.spec.sample_rate_hz
        out: list[Window] = []
        if self._utterances is not None:
            stream_end = self._stream_t0 + self._utterances.received / rate
            if chunk.t_start - stream_end > 1.5 / rate:
                out += self._as_windows(self._utterances.flush(), self._label)
                self._utterances = None
        if self._utterances is None:
            self._utterances = Utterances()
            self._stream_t0 = chunk.t_start
        self._label = chunk.label
        return out + self._as_windows(self._utterances.push(data), chunk.label)

    def _as_windows(self, utterances: list, label: str | None) -> list[Window]:
        rate = self.spec.sample_rate_hz
        t0 = self._stream_t0
        return [
            Window(self.spec.name, t0 + u.start / rate, t0 + u.end / rate, u.audio, label) for u in utterances
        ]

    def _frames(self, chunk: SensorChunk) -> list[Window]:
        data = np.asarray(chunk.data)
        if data.ndim not in (3, 4) or data.shape[0] == 0:
            raise ValueError(f"image: chunk data must be (n_frames, H, W[, C]), got shape {data.shape}")
        step = (chunk.t_end - chunk.t_start) / data.shape[0]
        return [
            Window("image", chunk.t_start + i * step, chunk.t_start + (i + 1) * step, data[i], chunk.label)
            for i in range(data.shape[0])
        ]

    def _events(self, chunk: SensorChunk) -> list[Window]:
        data = chunk.data
        if not isinstance(data, WristData):
            beats = np.asarray(data, dtype=np.float64)
            if beats.ndim != 2 or beats.shape[1] != 2:
                raise ValueError(
                    f"hr: chunk data must be WristData or (n_beats, 2) [beat_time_s, rr_s], got shape {beats.shape}"
                )
            data = WristData(beats)
        self._wrist = WristData(*(_joined(getattr(self._wrist, c), getattr(data, c)) for c in CHANNELS))
        if self._t_next_end is None:
            self._t_next_end = chunk.t_start + self.spec.window_s
        out = []
        while self._t_next_end <= chunk.t_end + 1e-9:
            end = self._t_next_end
            start = end - self.spec.window_s
            out.append(Window("hr", start, end, self._wrist.between(start, end), chunk.label))
            self._t_next_end = end + self.spec.hop_s
        self._wrist = self._wrist.between(self._t_next_end - self.spec.window_s, np.inf)
        return out

    def _regular(self, chunk: SensorChunk) -> list[Window]:
        data = np.asarray(chunk.data)
        multi = self.spec.channels > 1
        if multi and (data.ndim != 2 or data.shape[0] != self.spec.channels):
            raise ValueError(
                f"{self.spec.name}: chunk data must be (channels={self.spec.channels}, n), got shape {data.shape}"
            )
        if not multi and data.ndim != 1:
            raise ValueError(f"{self.spec.name}: chunk data must be 1-D samples, got shape {data.shape}")
        rate = self.spec.sample_rate_hz
        buffered_end = None if self._buf is None else self._buf_t0 + self._buf.shape[-1] / rate
        if self._buf is None or chunk.t_start - buffered_end > 1.5 / rate:
            self._buf = data[..., :0]  # first chunk, or a gap in the signal: restart windowing here
            self._buf_t0 = chunk.t_start
        self._buf = np.concatenate([self._buf, data], axis=-1)
        win, hop = self.spec.window_samples, self.spec.hop_samples
        out = []
        while self._buf.shape[-1] >= win:
            window = self._buf[..., :win].copy()
            out.append(Window(self.spec.name, self._buf_t0, self._buf_t0 + win / rate, window, chunk.label))
            self._buf = self._buf[..., hop:]
            self._buf_t0 += hop / rate
        return out


def _joined(kept: np.ndarray | None, new: np.ndarray | None) -> np.ndarray | None:
    """A channel's buffered samples followed by a chunk's; a channel stays absent until a chunk carries it."""
    if new is None:
        return kept
    return new if kept is None else np.concatenate([kept, new])
