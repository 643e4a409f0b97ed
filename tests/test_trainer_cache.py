"""The feature cache: computed once, served after, and computed again when a recording or the code changes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import mmer_core.dsp
import mmer_core.wrist
from trainer.cache import cache_key, cached_arrays


def test_an_entry_is_computed_once_and_served_after(tmp_path: Path) -> None:
    calls = []

    def compute() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"x": np.arange(3.0), "name": np.array("S2")}

    first = cached_arrays(tmp_path / "e.npz", compute)
    again = cached_arrays(tmp_path / "e.npz", compute)
    assert len(calls) == 1 and np.array_equal(first["x"], again["x"]) and str(again["name"]) == "S2"
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"], "no temporary file is left behind"


def test_the_key_follows_the_recording_the_code_and_the_parameters(tmp_path: Path) -> None:
    recording = tmp_path / "a.wav"
    recording.write_bytes(b"1234")
    key = cache_key([recording], (mmer_core.dsp,), {"rate": 16000})
    assert key == cache_key([recording], (mmer_core.dsp,), {"rate": 16000})
    assert key != cache_key([recording], (mmer_core.wrist,), {"rate": 16000}), "other code"
    assert key != cache_key([recording], (mmer_core.dsp,), {"rate": 8000}), "other parameters"
    recording.write_bytes(b"12345")
    assert key != cache_key([recording], (mmer_core.dsp,), {"rate": 16000}), "a changed recording"
    os.utime(recording, ns=(1, 1))
    assert cache_key([recording], (mmer_core.dsp,), {}) != cache_key(
        [tmp_path / "b.wav"], (mmer_core.dsp,), {}
    )
