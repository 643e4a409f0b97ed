"""An Empatica E4 session (an E4 export folder, or a WESAD subject pickle, whose wrist device is an E4) as
the wrist signals and windows the edge node sees.

The trainer's loader, the yardstick and the node's replay all read a session here, so a model is trained
and scored on exactly the windows a device playing the session back would cut. Beats come from BVP.csv with
the shared rr_from_ppg (the E4's own IBI.csv drops beats whenever it is unsure, often for minutes; it is
used only when there is no BVP.csv); EDA.csv and TEMP.csv are optional (a device without them gives
beats only). Truth labels from a labels.csv (subject, start_unix_utc, end_unix_utc, label) in the folder
or its parent, rows of subject = the folder's name; a window is labelled when it lies wholly in one
labelled interval. A WESAD pickle carries BVP, EDA and TEMP at the E4's rates and a protocol code per 1/700 s;
its labelled intervals are the runs of one protocol condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmer_core.formats import (
    WESAD_HZ,
    WESAD_LABEL_HZ,
    WESAD_PROTOCOL,
    read_e4_ibi,
    read_e4_labels,
    read_e4_signal,
    read_wesad,
)
from mmer_core.modalities import SPECS
from mmer_core.taxonomy import map_label
from mmer_core.windowing import SensorChunk, Window, Windower
from mmer_core.wrist import WristData

CHUNK_S = 1.0  # signals are handed to the windower this much at a time, as a live device would


@dataclass(frozen=True)
class E4Session:
    """One session: its wrist signals and labelled intervals, times in seconds from the session start."""

    name: str
    start_unix: float
    duration_s: float
    signals: WristData
    intervals: tuple[tuple[float, float, str], ...]


def read_e4_session(folder: Path) -> E4Session:
    """The session in an E4 folder; ValueError naming the folder or file when it is not one."""
    if not folder.is_dir():
        raise ValueError(f"e4:{folder}: not a directory")
    bvp, ibi = folder / "BVP.csv", folder / "IBI.csv"
    if bvp.is_file():
        from mmer_core.preprocess.hr import rr_from_ppg  # scipy, loaded only for a PPG source

        start, fs, x = read_e4_signal(bvp)
        try:
            times, rr = rr_from_ppg(x, fs)
        except ValueError as exc:
            raise ValueError(f"{bvp}: {exc}") from None
        duration = len(x) / fs
    elif ibi.is_file():
        start, times, rr = read_e4_ibi(ibi)
        duration = float(times[-1]) if times.size else 0.0
    else:
        raise ValueError(f"e4:{folder}: no BVP.csv or IBI.csv, so no heart beats")
    if times.size == 0:
        raise ValueError(f"e4:{folder}: no heart beats found in the session")
    eda = _samples(folder / "EDA.csv", start)
    temp = _samples(folder / "TEMP.csv", start)
    intervals = tuple((a - start, b - start, label) for a, b, label in _intervals(folder))
    signals = WristData(np.column_stack([times, rr]), eda, temp)
    return E4Session(folder.name, start, duration, signals, intervals)


def read_wesad_session(path: Path) -> E4Session:
    """The wrist session of a WESAD subject pickle; ValueError naming the file when it is not one."""
    from mmer_core.preprocess.hr import rr_from_ppg  # scipy, loaded only for a PPG source

    rec = read_wesad(path)
    try:
        times, rr = rr_from_ppg(rec.bvp, WESAD_HZ["BVP"])
    except ValueError as exc:
        raise ValueError(f"wesad:{path}: {exc}") from None
    if times.size == 0:
        raise ValueError(f"wesad:{path}: no heart beats found in the wrist BVP")
    duration = min(len(rec.bvp) / WESAD_HZ["BVP"], len(rec.protocol) / WESAD_LABEL_HZ)
    signals = WristData(
        np.column_stack([times, rr]), _even(rec.eda, WESAD_HZ["EDA"]), _even(rec.temp, WESAD_HZ["TEMP"])
    )
    return E4Session(rec.subject, 0.0, duration, signals, _protocol_runs(rec.protocol))


def _even(x: np.ndarray | None, fs: float) -> np.ndarray | None:
    return None if x is None else np.column_stack([np.arange(len(x)) / fs, x])


def _protocol_runs(codes: np.ndarray) -> tuple[tuple[float, float, str], ...]:
    """(start_s, end_s, label) of every run of one protocol condition."""
    edges = np.flatnonzero(np.diff(codes)) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, len(codes)]
    return tuple(
        (a / WESAD_LABEL_HZ, b / WESAD_LABEL_HZ, map_label("wesad", int(codes[a])))
        for a, b in zip(starts, ends, strict=True)
        if int(codes[a]) in WESAD_PROTOCOL
    )


def _samples(path: Path, session_start: float) -> np.ndarray | None:
    """(time_s from the session start, value) rows of an optional E4 signal file, None when it is absent."""
    if not path.is_file():
        return None
    start, fs, x = read_e4_signal(path)
    return np.column_stack([start - session_start + np.arange(len(x)) / fs, x])


def _intervals(folder: Path) -> list[tuple[float, float, str]]:
    for candidate in (folder / "labels.csv", folder.parent / "labels.csv"):
        if candidate.is_file():
            return sorted(read_e4_labels(candidate).get(folder.name, []))
    return []


def e4_windows(session: E4Session) -> Iterator[Window]:
    """The hr windows of the session in order, each with its label (None outside every labelled interval)."""
    windower = Windower(SPECS["hr"])
    for t0 in np.arange(0.0, session.duration_s, CHUNK_S):
        t1 = float(t0 + CHUNK_S)
        chunk = session.signals.between(float(t0), t1)
        for w in windower.push(SensorChunk("hr", float(t0), t1, chunk)):
            label = next((lab for a, b, lab in session.intervals if a <= w.t_start and w.t_end <= b), None)
            yield Window(w.modality, w.t_start, w.t_end, w.data, label)
