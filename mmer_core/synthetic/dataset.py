"""The batch API: labelled windows of many synthetic subjects, for training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmer_core.modalities import SPECS, get_spec
from mmer_core.synthetic.session import NoiseConfig, Session, SessionConfig
from mmer_core.taxonomy import QUADRANTS, Taxonomy
from mmer_core.windowing import Windower

LABEL_SETTLED_S = 10.0


@dataclass(frozen=True)
class LabelledWindows:
    """Raw windows of one modality with labels (taxonomy indices) and subject ids for subject-wise splits."""

    modality: str
    windows: list[object]
    labels: np.ndarray
    subjects: np.ndarray
    t_end: np.ndarray
    taxonomy: Taxonomy = QUADRANTS

    def __len__(self) -> int:
        return len(self.windows)


def subject_session(index: int, seed: int, seconds: float, noise: NoiseConfig | None = None) -> Session:
    """The index-th synthetic subject of a data set with this seed."""
    return Session(
        SessionConfig(
            f"synthetic-{seed}-{index:03d}", seed * 1000 + index, seconds, noise=noise or NoiseConfig()
        )
    )


def make_windows(
    modality: str,
    n_subjects: int,
    seconds_per_subject: float,
    seed: int,
    noise: NoiseConfig | None = None,
    stride: int = 1,
    skip_transitions: bool = True,
) -> LabelledWindows:
    """Every stride-th window of each subject's session, labelled with the truth at window end.

    Windows whose label changes within their last LABEL_SETTLED_S (all of a shorter window) are left out
    by default: their label is ambiguous by construction. A long window (a minute of wrist physiology)
    holds the end of the state before, as a real one does after a change.
    """
    spec = get_spec(modality)
    if n_subjects < 1 or seconds_per_subject < spec.window_s or stride < 1:
        raise ValueError(f"{modality}: need n_subjects >= 1, seconds >= {spec.window_s}, stride >= 1")
    windows, labels, subjects, ends = [], [], [], []
    for i in range(n_subjects):
        session = subject_session(i, seed, seconds_per_subject, noise)
        windower = Windower(SPECS[modality])
        count = 0
        for chunk in session.chunks((modality,), chunk_s=2.0):
            for w in windower.push(chunk):
                count += 1
                if (count - 1) % stride:
                    continue
                label = session.label_at(w.t_end - 1e-6)
                settled = max(w.t_start, w.t_end - LABEL_SETTLED_S)
                if skip_transitions and session.label_at(settled + 1e-6) != label:
                    continue
                windows.append(w.data)
                labels.append(QUADRANTS.index(label))
                subjects.append(session.config.subject_id)
                ends.append(w.t_end)
    return LabelledWindows(
        modality,
        windows,
        np.array(labels, dtype=np.int64),
        np.array(subjects),
        np.array(ends, dtype=np.float64),
    )
