"""Sensor sources as iterators of model windows: synthetic sessions and .npz replays.

A replay .npz holds, per modality m, `m_data` (N, ...) raw windows (hr rows
NaN-padded to equal length), `m_t_start`, `m_t_end` (N,) seconds and
optionally `m_labels` (N,) strings; windows are yielded in order of t_end.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mmer_core.synthetic.session import Session, SessionConfig, stream_windows
from mmer_core.windowing import Window


def open_source(
    source: str, modalities: Sequence[str], subject: str, fast: bool, seconds: float | None
) -> Iterator[Window]:
    """Windows from `synthetic[:SEED]` or `replay:PATH`; ValueError naming the source otherwise."""
    kind, _, arg = source.partition(":")
    if kind == "synthetic":
        seed = int(arg) if arg else 0
        session = Session(SessionConfig(subject_id=subject, seed=seed, duration_s=seconds or 24 * 3600.0))
        return stream_windows(session, modalities, realtime=not fast)
    if kind == "replay":
        return replay_npz(Path(arg), modalities, fast, seconds)
    if kind == "lsl":
        raise ValueError("source lsl: needs the optional pylsl extra, not supported by this build")
    raise ValueError(f"source {source!r}: expected synthetic[:SEED] or replay:PATH")


def replay_npz(path: Path, modalities: Sequence[str], fast: bool, seconds: float | None) -> Iterator[Window]:
    if path.suffix != ".npz" or not path.is_file():
        raise ValueError(f"source replay:{path}: not an existing .npz recording")
    with np.load(path, allow_pickle=False) as npz:
        streams = []
        for m in modalities:
            if f"{m}_data" not in npz:
                raise ValueError(f"source replay:{path}: no {m}_data array")
            labels = npz.get(f"{m}_labels", None)
            streams.append(
                [
                    (float(te), m, float(ts), d, None if labels is None else str(labels[i]))
                    for i, (ts, te, d) in enumerate(
                        zip(npz[f"{m}_t_start"], npz[f"{m}_t_end"], npz[f"{m}_data"], strict=True)
                    )
                ]
            )
    return _paced(streams, fast, seconds)


def _paced(streams: list[list], fast: bool, seconds: float | None) -> Iterator[Window]:
    started = time.monotonic()
    for te, m, ts, data, label in heapq.merge(*streams, key=lambda r: r[0]):
        if seconds is not None and te > seconds:
            return
        if not fast and (delay := te - (time.monotonic() - started)) > 0:
            time.sleep(delay)
        if m == "hr":
            data = data[~np.isnan(data).all(axis=-1)] if data.ndim > 1 else data[~np.isnan(data)]
        yield Window(m, ts, te, data, label)
