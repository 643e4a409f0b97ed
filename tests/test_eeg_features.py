"""EEG band power and differential entropy against signals with known answers, and their artefact tolerance."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from mmer_core.formats import DEAP_CHANNELS
from mmer_core.modalities import EEG_BANDS, EEG_CHANNELS, SPECS
from mmer_core.preprocess import eeg, preprocess_batch
from mmer_core.taxonomy import QUADRANTS
from testkit.deap_files import write_deap_subject
from trainer.loaders.deap import load_deap

RATE = 128.0
BANDS = [name for name, _, _ in EEG_BANDS]
N = len(EEG_CHANNELS) * len(EEG_BANDS)


def bin_width(lo: float, hi: float) -> float:
    """Hz the Welch bins of a band cover (0.5 s segments: 2 Hz bins)."""
    df = RATE / SPEC_NPERSEG
    freqs = np.arange(0, RATE / 2 + df, df)
    return float(np.sum((freqs >= lo) & (freqs < hi)) * df)


SPEC_NPERSEG = int(SPECS["eeg"].params["welch_nperseg"])


def test_differential_entropy_of_gaussian_noise_of_known_variance() -> None:
    """DE is the entropy of a Gaussian of the band's power; white noise of variance s^2 has s^2 * width / (fs/2)
    in a band, which the (median, bias-corrected) Welch estimate recovers on average."""
    from scipy.stats import norm

    sigma = 7.0
    assert eeg.differential_entropy(np.array(sigma**2)) == pytest.approx(
        norm(scale=sigma).entropy(), rel=1e-12
    )
    x = sigma * np.random.default_rng(0).standard_normal((100, 14, 256))
    de = preprocess_batch("eeg", list(x))[:, :N].reshape(100, 14, len(BANDS)).astype(np.float64)
    power = np.exp(2 * de) / (2 * np.pi * np.e)
    for i, (_, lo, hi) in enumerate(EEG_BANDS):
        assert power[..., i].mean() == pytest.approx(sigma**2 * bin_width(lo, hi) / (RATE / 2), rel=0.03)


def test_a_10_hz_sine_puts_its_power_in_alpha() -> None:
    t = np.arange(256) / RATE
    x = 15 * np.sin(2 * np.pi * 10 * t) + 0.1 * np.random.default_rng(1).standard_normal((14, 256))
    f = eeg.preprocess(x)
    relative = f[N : 2 * N].reshape(14, len(BANDS))
    assert (relative[:, BANDS.index("alpha")] > 0.99).all()


def test_one_blink_barely_moves_the_features() -> None:
    """A 300 uV blink in one channel: the robust window (clipping + median Welch) keeps that channel's DE
    within 0.5 nats of the clean window's, where a plain mean Welch moves it by several nats."""
    rng = np.random.default_rng(2)
    t = np.arange(256) / RATE
    clean = 10 * np.sin(2 * np.pi * 10 * t) + 5 * rng.standard_normal((14, 256))
    blink = clean.copy()
    ch = EEG_CHANNELS.index("AF3")
    blink[ch] += 300 * np.exp(-0.5 * ((np.arange(256) - 100) / 10) ** 2)
    de_clean, de_blink = eeg.preprocess(clean)[:N], eeg.preprocess(blink)[:N]
    assert np.max(np.abs(de_blink - de_clean)) < 0.5
    plain = lambda x: eeg.differential_entropy(  # noqa: E731
        np.stack([p for p in _mean_welch_band_power(x)], axis=-1)
    )
    assert np.max(np.abs(plain(blink)[ch] - plain(clean)[ch])) > 2.0


def _mean_welch_band_power(x: np.ndarray):
    from mmer_core import dsp

    freqs, psd = dsp.welch(x, RATE, SPEC_NPERSEG, SPEC_NPERSEG // 2, "mean")
    for _, lo, hi in EEG_BANDS:
        yield psd[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1) * (freqs[1] - freqs[0])


def test_deap_files_in_deaps_own_layout(tmp_path: Path) -> None:
    """40 trials x 40 channels x 8064 samples (3 s baseline + 60 s) with 40 x 4 ratings."""
    labels = [QUADRANTS.labels[i % 4] for i in range(40)]
    ratings = write_deap_subject(tmp_path / "s07.dat", labels, trial_s=60.0, seed=3, drawn=False)
    with (tmp_path / "s07.dat").open("rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    assert raw["data"].shape == (40, 40, 8064) and raw["labels"].shape == (40, 4)
    assert len(DEAP_CHANNELS) == 32
    d = load_deap(tmp_path)
    assert d.x.shape == (40 * 30, *SPECS["eeg"].input_shape), "60 s trials: 30 windows of 2 s each"
    assert (d.subjects == "s07").all()
    expected = [QUADRANTS.index(lab) for lab in labels]
    assert d.y[::30].tolist() == expected
    assert np.all(ratings[:, :2] != 5.0)
    assert np.all(np.diff(d.t_end) > 0), "windows in recording order on one clock"
