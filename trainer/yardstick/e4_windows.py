"""Every window of every labelled wrist session (E4 export folders with a labels.csv, or WESAD subject
pickles), as the edge cuts and preprocesses it, cached on disk.

A session's windows take seconds to compute (beat detection in an hour of BVP, then hundreds of
windows), and the yardstick reads each many times, so they are cached outside the project under
trainer.cache's e4 folder, keyed by the session's files (path, size, mtime), the hr
spec's parameters and the source of the code that reads, windows and preprocesses them: a changed file,
parameter or feature is computed again.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import mmer_core.dsp
import mmer_core.e4
import mmer_core.formats
import mmer_core.preprocess.hr
import mmer_core.preprocess.skin
import mmer_core.windowing
import mmer_core.wrist
from mmer_core.e4 import E4Session, e4_windows, read_e4_session, read_wesad_session
from mmer_core.file_tree import files_below
from mmer_core.formats import read_e4_labels
from mmer_core.modalities import HR_FEATURES, SPECS
from mmer_core.preprocess import preprocess
from mmer_core.taxonomy import QUADRANTS
from mmer_core.wrist import WristData
from trainer.cache import cache_dir, cache_key, cached_arrays

# the code whose output is cached: a change to any of them makes every cached session stale
CACHED_CODE = (
    mmer_core.e4,
    mmer_core.formats,
    mmer_core.windowing,
    mmer_core.wrist,
    mmer_core.preprocess.hr,
    mmer_core.preprocess.skin,
    mmer_core.dsp,
)
REFERENCE_STATS = (
    "hr_mean",
    "hr_sd",
    "hr_min",
    "hr_max",
    "rmssd",
    "sdnn",
    "eda_mean",
    "eda_sd",
    "eda_min",
    "eda_max",
    "eda_slope",
    "temp_mean",
    "temp_sd",
    "temp_min",
    "temp_max",
    "temp_slope",
)


@dataclass(frozen=True)
class SessionWindows:
    """One wearer's windows in recording order: the model's features (rows the edge rejects are NaN), the
    references' plain statistics, the label index (-1: unlabelled) and the window end (s)."""

    person: str
    features: np.ndarray
    stats: np.ndarray
    y: np.ndarray
    t_end: np.ndarray


def labelled_sessions(root: Path) -> list[Path]:
    """The labelled sessions below root: the E4 folders of the persons labels.csv names, or else the WESAD
    subject pickles (S<n>.pkl); ValueError when there are neither or a named folder is missing."""
    labels = root / "labels.csv"
    if not labels.is_file():
        pickles = files_below(root, "S*.pkl")
        if not pickles:
            raise ValueError(f"e4:{root}: no labels.csv (E4 session folders) or S<n>.pkl (WESAD subjects)")
        return pickles
    folders = [root / person for person in sorted(read_e4_labels(labels))]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise ValueError(f"e4:{root}: labels.csv names sessions without a folder: {', '.join(missing)}")
    if not folders:
        raise ValueError(f"e4:{root}: labels.csv labels no session")
    return folders


def session_windows(source: Path, cache: Path | None = None) -> SessionWindows:
    """The session's windows (an E4 folder or a WESAD pickle), from the cache when its files, the hr spec and
    the code are unchanged."""
    files = [source] if source.is_file() else sorted([*source.glob("*.csv"), source.parent / "labels.csv"])
    hr = SPECS["hr"]
    key = cache_key(files, (*CACHED_CODE, sys.modules[__name__]), [hr.params, hr.window_s, hr.hop_s])
    arrays = cached_arrays(
        (cache or cache_dir("e4")) / f"{source.stem}-{key}.npz", lambda: asdict(_compute(_read(source)))
    )
    return SessionWindows(str(arrays.pop("person")), **arrays)


def _read(source: Path) -> E4Session:
    return read_wesad_session(source) if source.suffix == ".pkl" else read_e4_session(source)


def _compute(session: E4Session) -> SessionWindows:
    features, stats, y, ends = [], [], [], []
    for w in e4_windows(session):
        try:
            features.append(preprocess("hr", w.data))
        except ValueError:  # the edge rejects this window (too few plausible beats): it is never scored
            features.append(np.full(len(HR_FEATURES), np.nan, np.float32))
        stats.append(reference_stats(w.data))
        y.append(-1 if w.label is None else QUADRANTS.index(w.label))
        ends.append(w.t_end)
    return SessionWindows(session.name, np.stack(features), np.stack(stats), np.array(y), np.array(ends))


def reference_stats(w: WristData) -> np.ndarray:
    """REFERENCE_STATS of one window: the plain statistics a classical wrist-stress baseline feeds its
    random forest (NaN where a channel has no samples)."""
    rr = w.beats[:, 1]
    rr = rr[(rr >= SPECS["hr"].params["min_rr_s"]) & (rr <= SPECS["hr"].params["max_rr_s"])]
    hr = 60.0 / rr if rr.size else np.full(1, np.nan)
    diffs = np.diff(rr)
    out = [
        hr.mean(),
        hr.std(),
        hr.min(),
        hr.max(),
        np.sqrt(np.mean(diffs**2)) if diffs.size else np.nan,
        rr.std() if rr.size else np.nan,
    ]
    for samples in (w.eda, w.temp):
        if samples is None or len(samples) < 2:
            out += [np.nan] * 5
            continue
        t, v = samples[:, 0], samples[:, 1]
        out += [v.mean(), v.std(), v.min(), v.max(), np.polyfit(t - t[0], v, 1)[0]]
    return np.asarray(out, dtype=np.float64)
