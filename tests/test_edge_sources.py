"""Sources: .npz replays in window order, synthetic sessions by seed, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.sources import open_source


def test_replay_npz_yields_windows_in_time_order(tmp_path):
    hr = np.full((2, 12), np.nan)
    hr[0, :10] = 0.8
    hr[1, :11] = 0.7
    path = tmp_path / "rec.npz"
    np.savez(
        path,
        eeg_data=np.zeros((3, 14, 256)),
        eeg_t_start=np.array([0.0, 0.5, 1.0]),
        eeg_t_end=np.array([2.0, 2.5, 3.0]),
        eeg_labels=np.array(["calm", "calm", "sad"]),
        hr_data=hr,
        hr_t_start=np.array([0.0, 1.0]),
        hr_t_end=np.array([2.2, 3.2]),
    )
    ws = list(open_source(f"replay:{path}", ["eeg", "hr"], "s1", fast=True, seconds=None))
    assert [(w.modality, w.t_end) for w in ws] == [
        ("eeg", 2.0),
        ("hr", 2.2),
        ("eeg", 2.5),
        ("eeg", 3.0),
        ("hr", 3.2),
    ]
    assert [len(w.data) for w in ws if w.modality == "hr"] == [10, 11]
    assert ws[-2].label == "sad" and ws[1].label is None
    assert len(list(open_source(f"replay:{path}", ["eeg"], "s1", fast=True, seconds=2.6))) == 2


def test_synthetic_source_is_deterministic_by_seed():
    a = [w.data for w in open_source("synthetic:7", ["eeg"], "s1", fast=True, seconds=4.0)]
    b = [w.data for w in open_source("synthetic:7", ["eeg"], "s1", fast=True, seconds=4.0)]
    assert len(a) == len(b) > 0 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_bad_sources_are_refused(tmp_path):
    with pytest.raises(ValueError, match="expected synthetic"):
        open_source("camera:0", ["eeg"], "s1", True, None)
    np.savez(tmp_path / "r.npz", eeg_data=np.zeros((1, 14, 256)), eeg_t_start=[0.0], eeg_t_end=[2.0])
    with pytest.raises(ValueError, match="no speech_data"):
        open_source(f"replay:{tmp_path / 'r.npz'}", ["speech"], "s1", True, None)
    with pytest.raises(ValueError, match="pylsl"):
        open_source("lsl:EEG", ["eeg"], "s1", True, None)
