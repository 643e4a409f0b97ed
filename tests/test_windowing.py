"""The windower: windows by spec from chunks of any size, and clear errors on bad chunks."""

from __future__ import annotations

import numpy as np
import pytest

from mmer_core.modalities import SPECS
from mmer_core.windowing import SensorChunk, Windower


def test_regular_windows_by_window_and_hop_across_unaligned_chunks() -> None:
    w = Windower(SPECS["eeg"])
    signal = np.arange(128 * 6, dtype=np.float64)[None, :].repeat(14, axis=0)
    out, t, i = [], 0.0, 0
    for size in [37, 100, 3, 200, 128, 300]:
        chunk = signal[:, i : i + size]
        out += w.push(SensorChunk("eeg", t, t + size / 128, chunk))
        t, i = t + size / 128, i + size
    assert [round(x.t_start, 6) for x in out] == [0.5 * k for k in range(9)]  # 6 s of signal
    for win in out:
        assert win.data.shape == (14, 256)
        start = round(win.t_start * 128)
        assert np.array_equal(win.data[0], signal[0, start : start + 256]), "samples line up with time"
        assert win.t_end - win.t_start == pytest.approx(2.0)


def test_a_gap_restarts_windowing() -> None:
    w = Windower(SPECS["eeg"])
    assert w.push(SensorChunk("eeg", 0.0, 1.5, np.zeros((14, 192)))) == []
    out = w.push(SensorChunk("eeg", 5.0, 7.2, np.ones((14, 282))))
    assert len(out) == 1 and out[0].t_start == pytest.approx(5.0)
    assert out[0].data.min() == 1.0, "samples from before the gap are not mixed in"


def test_heart_beats_are_windowed_by_time() -> None:
    w = Windower(SPECS["hr"])
    beats = np.column_stack([np.arange(0.8, 90, 0.8), np.full(112, 0.8)])
    out = []
    for t0 in range(0, 90, 2):
        inside = beats[(beats[:, 0] >= t0) & (beats[:, 0] < t0 + 2)]
        out += w.push(SensorChunk("hr", t0, t0 + 2, inside, "calm"))
    assert [x.t_end for x in out] == [float(t) for t in range(60, 91, 5)], "60 s windows every 5 s"
    assert all(74 <= len(x.data.beats) <= 75 and x.data.eda is None for x in out), "a beat-only device"
    assert out[0].label == "calm"


def test_each_frame_is_a_window() -> None:
    w = Windower(SPECS["image"])
    out = w.push(SensorChunk("image", 1.0, 2.0, np.zeros((5, 48, 48), np.uint8)))
    assert [round(x.t_start, 3) for x in out] == [1.0, 1.2, 1.4, 1.6, 1.8]


@pytest.mark.parametrize(
    ("modality", "chunk", "message"),
    [
        ("eeg", SensorChunk("eeg", 0, 1, np.zeros((8, 128))), "channels=14"),
        ("speech", SensorChunk("speech", 0, 1, np.zeros((2, 16000))), "1-D"),
        ("hr", SensorChunk("hr", 0, 1, np.zeros((3, 3))), r"\(n_beats, 2\)"),
        ("image", SensorChunk("image", 0, 1, np.zeros((48, 48))), "n_frames"),
        ("eeg", SensorChunk("speech", 0, 1, np.zeros(16000)), "modality 'speech'"),
        ("eeg", SensorChunk("eeg", 1, 0.5, np.zeros((14, 64))), "before it starts"),
    ],
)
def test_bad_chunks_are_refused(modality: str, chunk: SensorChunk, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Windower(SPECS[modality]).push(chunk)


@pytest.mark.parametrize("modality", ["eeg", "speech"])
def test_out_of_order_chunk_is_refused(modality: str) -> None:
    w = Windower(SPECS[modality])
    shape = (SPECS[modality].channels, 128) if modality == "eeg" else (16000,)
    w.push(SensorChunk(modality, 1.0, 2.0, np.zeros(shape)))
    with pytest.raises(ValueError, match="overlaps or precedes"):
        w.push(SensorChunk(modality, 0.5, 1.5, np.zeros(shape)))
