"""Live sensors over Lab Streaming Layer (pylsl, the optional `lsl` extra: `pip install 'mmer[lsl]'`).

`lsl:NAME` opens, for each modality the node runs, the LSL stream called
NAME whose type names that modality (case as LSL devices publish it):

| modality | stream type | channels, rate | samples |
| --- | --- | --- | --- |
| eeg | EEG | 14 at 128 Hz | microvolts, channel order of mmer_core.modalities.EEG_CHANNELS |
| speech | Audio | 1 at 16 kHz | float in [-1, 1] |
| hr | RR or IBI | 1, irregular | one sample per beat: the interval (s) ending at the sample's timestamp |
| image | VideoRaw or Face | S*S, any rate | one grayscale SxS frame per sample, row-major |

Regular streams run on a sample clock (time = samples received / rate), so
windows are cut exactly as from a recording; beats run on their LSL
timestamps. The LSL network settings (discovery scope, known peers) are
liblsl's own: an lsl_api.cfg, or the file named by the LSLAPICFG variable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.windowing import SensorChunk, Window, Windower

STREAM_TYPES = {"eeg": ("EEG",), "speech": ("Audio",), "hr": ("RR", "IBI"), "image": ("VideoRaw", "Face")}
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


@dataclass
class _Stream:
    modality: str
    inlet: object
    windower: Windower
    rate: float
    received: int = 0
    t0: float | None = None
    t_last: float = 0.0


def open_lsl(
    name: str, modalities: Sequence[str], seconds: float | None, resolve_timeout_s: float = 5.0
) -> Iterator[Window]:
    """Resolve one stream per modality now (ValueError naming what is missing), then read windows lazily."""
    if not name:
        raise ValueError("source lsl: needs a stream name, lsl:NAME")
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
        _check(name, m, info.channel_count(), info.nominal_srate())
        inlet = pylsl.StreamInlet(info, max_buflen=30, recover=True, as_numpy=True)
        streams.append(_Stream(m, inlet, Windower(SPECS[m]), info.nominal_srate()))
    return _read(name, streams, seconds)


def _check(name: str, modality: str, channels: int, rate: float) -> None:
    spec = SPECS[modality]
    where = f"source lsl:{name}: {modality} stream"
    if modality in ("eeg", "speech"):
        if channels != spec.channels or rate != spec.sample_rate_hz:
            raise ValueError(
                f"{where} has {channels} channels at {rate:g} Hz, expected {spec.channels} at "
                f"{spec.sample_rate_hz:g} Hz"
            )
    elif modality == "hr":
        if channels != 1:
            raise ValueError(f"{where} has {channels} channels, expected 1 (the RR interval in seconds)")
    elif round(np.sqrt(channels)) ** 2 != channels or channels < 64:
        raise ValueError(f"{where} has {channels} channels, expected S*S pixels of a square frame (S >= 8)")


def _read(name: str, streams: list[_Stream], seconds: float | None) -> Iterator[Window]:
    started = time.monotonic()
    try:
        while seconds is None or time.monotonic() - started < seconds:
            got = 0
            for s in streams:
                samples, stamps = s.inlet.pull_chunk(timeout=0.0, max_samples=8192)
                if len(stamps):
                    got += len(stamps)
                    yield from s.windower.push(_chunk(s, np.asarray(samples), np.asarray(stamps)))
            if not got:
                time.sleep(IDLE_SLEEP_S)
    finally:
        for s in streams:
            s.inlet.close_stream()


def _chunk(s: _Stream, samples: np.ndarray, stamps: np.ndarray) -> SensorChunk:
    """One pull of a stream as the windower's sensor chunk on the stream's own clock."""
    n = len(stamps)
    if s.modality == "hr":
        if s.t0 is None:
            s.t0 = float(stamps[0]) - float(samples[0, 0])  # the first interval began one RR earlier
        times = stamps - s.t0
        t_start, s.t_last = s.t_last, float(times[-1]) + 1e-6
        return SensorChunk(
            "hr", t_start, max(s.t_last, t_start + 1e-6), np.column_stack([times, samples[:, 0]])
        )
    t_start = s.received / s.rate if s.rate > 0 else s.t_last
    s.received += n
    if s.modality == "image":
        side = round(np.sqrt(samples.shape[1]))
        t_end = s.received / s.rate if s.rate > 0 else t_start + n * SPECS["image"].window_s
        s.t_last = t_end
        return SensorChunk("image", t_start, t_end, samples.reshape(n, side, side))
    data = samples.T.astype(np.float64) if s.modality == "eeg" else samples[:, 0].astype(np.float32)
    return SensorChunk(s.modality, t_start, s.received / s.rate, data)
