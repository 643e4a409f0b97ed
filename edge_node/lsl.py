"""Live sensors over Lab Streaming Layer (pylsl, the optional `lsl` extra: `pip install 'mmer[lsl]'`).

`lsl:NAME` opens, for each modality the node runs, the LSL stream called
NAME whose type names that modality (case as LSL devices publish it):

| modality | stream type | channels, rate | samples |
| --- | --- | --- | --- |
| eeg | EEG | 14 at 128 Hz | microvolts, channel order of mmer_core.modalities.EEG_CHANNELS |
| speech | Audio | 1 at 16 kHz | float in [-1, 1] |
| hr | RR or IBI | 1, irregular | one sample per beat: the interval (s) ending at the sample's timestamp |
| hr | PPG or BVP | 1, regular (e.g. 64 Hz) | pulse wave; beats detected live (`PpgBeats`, needs `mmer[ppg]`) |
| hr, optional | EDA or GSR | 1, any rate (E4: 4 Hz) | skin conductance, microsiemens |
| hr, optional | TEMP or Temperature | 1, any rate (E4: 4 Hz) | skin temperature, degrees C |
| image | VideoRaw or Face | S*S, any rate | one grayscale SxS frame per sample, row-major |

Regular streams run on a sample clock (time = samples received / rate), so
windows are cut exactly as from a recording; beats run on their LSL
timestamps. A wrist's skin conductance and temperature streams, when the
device publishes them under the same name, join its hr windows on the beats'
clock by their LSL timestamps (a device without them gives beat-only windows);
a window takes the skin samples that have arrived when its beats are final. The LSL network settings (discovery scope, known peers) are
liblsl's own: an lsl_api.cfg, or the file named by the LSLAPICFG variable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.windowing import SensorChunk, Window, Windower
from mmer_core.wrist import WristData

STREAM_TYPES = {
    "eeg": ("EEG",),
    "speech": ("Audio",),
    "hr": ("RR", "IBI", "PPG", "BVP"),
    "image": ("VideoRaw", "Face"),
}
PPG_TYPES = ("PPG", "BVP")
SKIN_TYPES = {"eda": ("EDA", "GSR"), "temp": ("TEMP", "Temperature")}
SKIN_RESOLVE_S = 1.0  # how long to look for a wrist's optional skin streams once its beats stream is found
IDLE_SLEEP_S = 0.01


def _pylsl():
    try:
        import pylsl
    except ImportError:
        raise ValueError(
            "source lsl: needs pylsl, the optional `lsl` extra (pip install 'mmer[lsl]')"
        ) from None
    except RuntimeError as exc:  # pylsl imports but finds no liblsl binary
        raise ValueError(f"source lsl: pylsl is installed but liblsl is missing ({exc})") from None
    return pylsl


class PpgBeats:
    """Beats of a live pulse wave, found by the same rr_from_ppg the trainer and the E4 replay use.

    Every `step_s` of new signal the last `analysis_s` seconds are analysed; a beat is final once it
    lies `edge_s` before the newest sample (the zero-phase filter and the peak prominence need signal
    on both sides of it), and each beat is handed out once.
    """

    def __init__(
        self, rate: float, analysis_s: float = 10.0, step_s: float = 1.0, edge_s: float = 1.0
    ) -> None:
        self.rate, self.analysis_s, self.step_s, self.edge_s = rate, analysis_s, step_s, edge_s
        self._buf = np.empty(0)
        self._t0 = 0.0  # session time of _buf[0]
        self._unanalysed = 0
        self._last_beat = -np.inf
        self.final_s = 0.0  # session time up to which every beat has been handed out

    def push(self, x: np.ndarray) -> np.ndarray | None:
        """Add samples; (n, 2) rows of [beat_time_s, rr_s] newly final, or None while no analysis ran.

        A long pull (a backlog) is analysed step by step, as if it had come in live.
        """
        x = np.asarray(x, dtype=np.float64)
        step = max(1, int(self.step_s * self.rate))
        found, analysed = [], False
        while len(x):
            take = step - self._unanalysed
            piece, x = x[:take], x[take:]
            self._buf = np.concatenate([self._buf, piece])
            self._unanalysed += len(piece)
            if self._unanalysed >= step:
                self._unanalysed = 0
                analysed = True
                found.append(self._analyse())
        return np.concatenate(found) if analysed else None

    def _analyse(self) -> np.ndarray:
        from mmer_core.preprocess.hr import P, rr_from_ppg

        drop = len(self._buf) - int(self.analysis_s * self.rate)
        if drop > 0:
            self._buf, self._t0 = self._buf[drop:], self._t0 + drop / self.rate
        end = self._t0 + len(self._buf) / self.rate
        if len(self._buf) < P["ppg_min_s"] * self.rate:
            return np.empty((0, 2))
        times, rr = rr_from_ppg(self._buf, self.rate)
        times = times + self._t0
        # a beat seen in an earlier analysis may move by a sample or two: anything closer than half the
        # shortest plausible interval to the last beat handed out is that beat again
        new = (times > self._last_beat + P["min_rr_s"] / 2) & (times <= end - self.edge_s)
        if new.any():
            self._last_beat = float(times[new][-1])
        self.final_s = max(self.final_s, end - self.edge_s)
        return np.column_stack([times[new], rr[new]])


@dataclass
class _Stream:
    modality: str
    inlet: object
    windower: Windower
    rate: float
    received: int = 0
    t0: float | None = None
    t_last: float = 0.0
    ppg: PpgBeats | None = None
    # optional wrist channels: channel -> inlet, and their samples not yet in a chunk as (lsl_time, value)
    skin: dict[str, object] = field(default_factory=dict)
    pending: dict[str, np.ndarray] = field(default_factory=dict)


def open_lsl(
    name: str, modalities: Sequence[str], seconds: float | None, resolve_timeout_s: float = 5.0
) -> Iterator[Window]:
    """Resolve one stream per modality now (ValueError naming what is missing), then read windows lazily."""
    if not name or "'" in name:
        raise ValueError(f"source lsl:{name}: needs a stream name without quotes, lsl:NAME")
    pylsl = _pylsl()
    streams = []
    for m in modalities:
        types = " or ".join(f"type='{t}'" for t in STREAM_TYPES[m])
        found = pylsl.resolve_bypred(f"name='{name}' and ({types})", 1, resolve_timeout_s)
        if not found:
            raise ValueError(
                f"source lsl:{name}: no LSL stream named {name!r} of type {'/'.join(STREAM_TYPES[m])} "
                f"for {m} found within {resolve_timeout_s:g} s"
            )
        info = found[0]
        _check(name, m, info.channel_count(), info.nominal_srate(), info.type())
        inlet = pylsl.StreamInlet(info, max_buflen=_buffer_s(m), recover=True, as_numpy=True)
        rate = info.nominal_srate()
        ppg = PpgBeats(rate) if m == "hr" and info.type() in PPG_TYPES else None
        stream = _Stream(m, inlet, Windower(SPECS[m]), rate, ppg=ppg)
        if m == "hr":
            stream.skin = _skin_inlets(pylsl, name)
            stream.pending = {c: np.empty((0, 2)) for c in stream.skin}
        streams.append(stream)
    return _read(streams, seconds)


def _buffer_s(modality: str) -> int:
    """Seconds an inlet holds before it drops the oldest samples: two windows of the modality, at least 30 s
    (a wrist's minute-long windows must survive a reader that fell behind by one)."""
    return max(30, int(2 * SPECS[modality].window_s))


def _skin_inlets(pylsl, name: str) -> dict[str, object]:
    """The wrist's optional EDA and temperature streams of this name that exist (ValueError for a wrong one)."""
    inlets = {}
    for channel, types in SKIN_TYPES.items():
        preds = " or ".join(f"type='{t}'" for t in types)
        found = pylsl.resolve_bypred(f"name='{name}' and ({preds})", 1, SKIN_RESOLVE_S)
        if not found:
            continue
        info = found[0]
        if info.channel_count() != 1:
            raise ValueError(
                f"source lsl:{name}: {channel} stream ({info.type()}) has {info.channel_count()} channels, expected 1"
            )
        inlets[channel] = pylsl.StreamInlet(info, max_buflen=_buffer_s("hr"), recover=True, as_numpy=True)
    return inlets


def _check(name: str, modality: str, channels: int, rate: float, kind: str) -> None:
    spec = SPECS[modality]
    where = f"source lsl:{name}: {modality} stream"
    if modality in ("eeg", "speech"):
        if channels != spec.channels or rate != spec.sample_rate_hz:
            raise ValueError(
                f"{where} has {channels} channels at {rate:g} Hz, expected {spec.channels} at "
                f"{spec.sample_rate_hz:g} Hz"
            )
    elif modality == "hr":
        low = 2 * SPECS["hr"].params["ppg_band_high_hz"]
        if kind in PPG_TYPES and not rate > low:
            raise ValueError(
                f"{where} ({kind}) runs at {rate:g} Hz, a pulse wave needs a regular rate above {low:g} Hz"
            )
        if channels != 1:
            raise ValueError(f"{where} has {channels} channels, expected 1 (RR interval in s, or pulse wave)")
    elif round(np.sqrt(channels)) ** 2 != channels or channels < 64:
        raise ValueError(f"{where} has {channels} channels, expected S*S pixels of a square frame (S >= 8)")


def _read(streams: list[_Stream], seconds: float | None) -> Iterator[Window]:
    started = time.monotonic()
    try:
        while seconds is None or time.monotonic() - started < seconds:
            got = 0
            for s in streams:
                for channel, inlet in s.skin.items():
                    values, times = inlet.pull_chunk(timeout=0.0, max_samples=8192)
                    if len(times):
                        rows = np.column_stack([np.asarray(times), np.asarray(values)[:, 0]])
                        s.pending[channel] = np.concatenate([s.pending[channel], rows])
                samples, stamps = s.inlet.pull_chunk(timeout=0.0, max_samples=8192)
                if len(stamps):
                    got += len(stamps)
                    chunk = _chunk(s, np.asarray(samples), np.asarray(stamps))
                    if chunk is not None:
                        yield from s.windower.push(chunk)
            if not got:
                time.sleep(IDLE_SLEEP_S)
    finally:
        for s in streams:
            s.inlet.close_stream()
            for inlet in s.skin.values():
                inlet.close_stream()


def _chunk(s: _Stream, samples: np.ndarray, stamps: np.ndarray) -> SensorChunk | None:
    """One pull of a stream as the windower's sensor chunk on the stream's own clock (None: nothing final yet)."""
    n = len(stamps)
    if s.ppg is not None:
        if s.t0 is None:
            s.t0 = float(stamps[0])  # the pulse wave's first sample is session time 0
        beats = s.ppg.push(samples[:, 0])
        if beats is None or s.ppg.final_s <= s.t_last:
            return None
        t_start, s.t_last = s.t_last, s.ppg.final_s
        return SensorChunk("hr", t_start, s.t_last, _wrist(s, beats))
    if s.modality == "hr":
        if s.t0 is None:
            s.t0 = float(stamps[0]) - float(samples[0, 0])  # the first interval began one RR earlier
        times = stamps - s.t0
        t_start, s.t_last = s.t_last, float(times[-1]) + 1e-6
        beats = np.column_stack([times, samples[:, 0]])
        return SensorChunk("hr", t_start, max(s.t_last, t_start + 1e-6), _wrist(s, beats))
    t_start = s.received / s.rate if s.rate > 0 else s.t_last
    s.received += n
    if s.modality == "image":
        side = round(np.sqrt(samples.shape[1]))
        t_end = s.received / s.rate if s.rate > 0 else t_start + n * SPECS["image"].window_s
        s.t_last = t_end
        return SensorChunk("image", t_start, t_end, samples.reshape(n, side, side))
    data = samples.T.astype(np.float64) if s.modality == "eeg" else samples[:, 0].astype(np.float32)
    return SensorChunk(s.modality, t_start, s.received / s.rate, data)


def _wrist(s: _Stream, beats: np.ndarray) -> WristData:
    """The chunk's beats with the skin samples on the beats' clock up to the chunk's end (later ones wait)."""
    if not s.skin:
        return WristData(beats)
    skin = {}
    for channel, rows in s.pending.items():
        times = rows[:, 0] - s.t0
        ready = times <= s.t_last
        skin[channel] = np.column_stack([times[ready], rows[ready, 1]])
        s.pending[channel] = rows[~ready]
    return WristData(beats, skin.get("eda"), skin.get("temp"))
