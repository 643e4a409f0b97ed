"""The numpy DSP of the edge path equals scipy.signal, the reference it replaces, and stays out of scipy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from mmer_core import dsp
from mmer_core.preprocess import preprocess_batch
from mmer_core.synthetic import speech as synth_speech

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(7)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


@pytest.mark.parametrize(
    ("n", "nperseg", "noverlap"), [(256, 128, 64), (100, 16, 5), (37, 16, 8), (50, 50, 25)]
)
def test_welch_equals_scipy(n: int, nperseg: int, noverlap: int) -> None:
    x = 10 * RNG.standard_normal((3, 14, n)) + 4.0
    f_ref, p_ref = signal.welch(x, fs=128.0, nperseg=nperseg, noverlap=noverlap, axis=-1)
    f, p = dsp.welch(x, 128.0, nperseg, noverlap)
    assert np.array_equal(f, f_ref)
    assert rel_err(p_ref, p) < 1e-12


@pytest.mark.parametrize("n_segments", [1, 2, 3, 7, 8])
def test_median_welch_equals_scipy(n_segments: int) -> None:
    x = 10 * RNG.standard_normal((2, 14, 32 * (n_segments + 1)))
    x[0, 3, 40:60] += 500.0  # an artefact in one segment
    f_ref, p_ref = signal.welch(x, fs=128.0, nperseg=64, noverlap=32, axis=-1, average="median")
    f, p = dsp.welch(x, 128.0, 64, 32, average="median")
    assert np.array_equal(f, f_ref)
    assert rel_err(p_ref, p) < 1e-12


def test_welch_refuses_an_overlap_as_long_as_the_segment() -> None:
    with pytest.raises(ValueError, match="noverlap"):
        dsp.welch(np.zeros(64), 128.0, 32, 32)


def test_lombscargle_equals_scipy_on_uneven_beats() -> None:
    t = np.cumsum(0.8 + 0.05 * RNG.standard_normal(60))
    y = 0.05 * np.sin(2 * np.pi * 0.1 * t) + 0.01 * RNG.standard_normal(60)
    w = 2 * np.pi * np.linspace(0.04, 0.4, 64)
    assert rel_err(signal.lombscargle(t, y, w), dsp.lombscargle(t, y, w)) < 1e-12


@pytest.mark.parametrize(
    ("gain", "den"),
    [
        (0.15, [1.0, -0.85]),
        (1.0, [1.0, -0.9999]),
        (0.3, [1.0, -0.5, 0.2, -0.1]),
        (2.0, [2.0]),
        *[synth_speech._resonator(f, bw) for f, bw in synth_speech.FORMANTS_HZ],
    ],
)
def test_allpole_filter_equals_lfilter(gain: float, den: list[float]) -> None:
    x = RNG.standard_normal(20_000)
    ref = signal.lfilter([gain], den, x)
    assert rel_err(ref, dsp.allpole_filter(gain, den, x)) < 1e-12
    assert np.allclose(signal.lfilter([gain], den, x[:3]), dsp.allpole_filter(gain, den, x[:3]), atol=1e-15)


@pytest.mark.parametrize(
    ("den", "reason"), [([1.0, -1.0], "unstable"), ([1.0, -1.2, 0.36], "repeated"), ([0.0, 1.0], "non-zero")]
)
def test_allpole_filter_refuses_filters_it_cannot_run(den: list[float], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        dsp.allpole_filter(1.0, den, np.ones(10))


def test_sawtooth_equals_scipy() -> None:
    phase = RNG.uniform(-50, 50, 1000)
    assert np.array_equal(dsp.sawtooth(phase), signal.sawtooth(phase))


def _scipy_eeg_features(x: np.ndarray) -> np.ndarray:
    """The EEG preprocessing written with scipy.signal.welch's median average (the reference)."""
    from mmer_core.modalities import EEG_BANDS
    from mmer_core.preprocess import eeg

    freqs, psd = signal.welch(
        eeg.clip_artefacts(x), fs=128.0, nperseg=64, noverlap=32, axis=-1, average="median"
    )
    df = freqs[1] - freqs[0]
    bp = np.stack([psd[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1) * df for _, lo, hi in EEG_BANDS], -1)
    power = bp + eeg.SPEC.params["power_floor"]
    de = 0.5 * np.log(2 * np.pi * np.e * power)
    relative = power / power.sum(axis=-1, keepdims=True)
    alpha = np.log(power[..., eeg._ALPHA])
    asym = np.stack([alpha[..., r] - alpha[..., left] for left, r in eeg._PAIRS], axis=-1)
    return np.concatenate([de.reshape(len(x), -1), relative.reshape(len(x), -1), asym], axis=-1)


def test_eeg_features_equal_the_scipy_reference() -> None:
    x = 20 * RNG.standard_normal((8, 14, 256))
    assert np.max(np.abs(preprocess_batch("eeg", list(x)) - _scipy_eeg_features(x))) < 1e-5


def test_hr_lf_hf_equals_the_scipy_reference() -> None:
    from mmer_core.preprocess import hr

    rr = 0.8 + 0.05 * np.sin(2 * np.pi * 0.1 * np.arange(60) * 0.8) + 0.01 * RNG.standard_normal(60)
    t = np.cumsum(rr)
    p = hr.P
    freqs = np.linspace(p["lf_low_hz"], p["hf_high_hz"], int(p["lomb_scargle_freqs"]))
    power = signal.lombscargle(t, rr - rr.mean(), 2 * np.pi * freqs)
    ref = np.log(power[freqs < p["lf_high_hz"]].sum() / power[freqs >= p["lf_high_hz"]].sum())
    features = hr.hrv_features(rr)
    assert features[8] == 1.0
    assert abs(features[7] - ref) < 1e-5


def test_edge_run_path_does_not_import_scipy() -> None:
    """What `mmer node` imports to run (node, agent, synthetic and replay sources, telemetry) stays scipy-free."""
    code = (
        "import json, sys\n"
        "import edge_node.cli, edge_node.node, edge_node.sources, edge_node.replay, edge_node.lsl\n"
        "import mmer_core.synthetic, mmer_core.telemetry\n"
        "from mmer_core.preprocess import preprocess_kept\n"
        "import numpy as np\n"
        "from mmer_core.synthetic import Session, SessionConfig, stream_windows\n"
        "ws = list(stream_windows(Session(SessionConfig('s', 1, 12.0))))\n"
        "[preprocess_kept(w.modality, [w.data]) for w in ws]\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'tensorflow', 'trainer'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []
