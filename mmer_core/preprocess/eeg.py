"""EEG: per-channel differential entropy and relative power in theta, alpha, beta and gamma, plus frontal
alpha asymmetry.

Differential entropy (DE) is the standard cross-subject EEG emotion feature: for a band-limited Gaussian
signal of power P it is 0.5 ln(2 pi e P). Relative band power (each band's share of the four) is the
spectrum's shape with the electrode's gain and the person's skull divided out. Alpha asymmetry
(ln right - ln left) indexes approach motivation / valence; the beta/alpha balance indexes arousal.

Artefacts are tolerated twice over: each channel is clipped at its median +- `clip_mad` robust standard
deviations (1.4826 MAD) of the window, so a blink or an electrode pop cannot dominate the power, and the
power spectrum is the median, not the mean, of Welch's 0.5 s sub-segments, so a sub-segment that an artefact
still spoils is outvoted by the clean ones.
"""

from __future__ import annotations

import numpy as np

from mmer_core import dsp
from mmer_core.modalities import EEG_ASYMMETRY_PAIRS, EEG_BANDS, EEG_CHANNELS, SPECS
from mmer_core.preprocess._checks import as_finite_array

SPEC = SPECS["eeg"]
P = SPEC.params
_ALPHA = [name for name, _, _ in EEG_BANDS].index("alpha")
_PAIRS = [(EEG_CHANNELS.index(left), EEG_CHANNELS.index(right)) for left, right in EEG_ASYMMETRY_PAIRS]
MAD_TO_STD = 1.4826  # a Gaussian's standard deviation over its median absolute deviation


def clip_artefacts(x: np.ndarray) -> np.ndarray:
    """Each channel clipped at its median +- clip_mad robust standard deviations: (..., channels, samples)."""
    median = np.median(x, axis=-1, keepdims=True)
    spread = MAD_TO_STD * np.median(np.abs(x - median), axis=-1, keepdims=True)
    limit = P["clip_mad"] * spread
    return np.clip(x, median - limit, median + limit)


def band_powers(x: np.ndarray) -> np.ndarray:
    """Welch band power per channel: (..., channels, samples) -> (..., channels, bands), linear scale (uV^2)."""
    nperseg = min(int(P["welch_nperseg"]), x.shape[-1])
    noverlap = int(nperseg * P["welch_overlap"])
    average = "median" if P["welch_median"] else "mean"
    freqs, psd = dsp.welch(x, SPEC.sample_rate_hz, nperseg, noverlap, average)
    df = freqs[1] - freqs[0]
    out = [psd[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1) * df for _, lo, hi in EEG_BANDS]
    return np.stack(out, axis=-1)


def differential_entropy(power: np.ndarray) -> np.ndarray:
    """DE of a band-limited Gaussian signal of the given power (variance): 0.5 ln(2 pi e P), in nats."""
    return 0.5 * np.log(2.0 * np.pi * np.e * power)


def _features(x: np.ndarray) -> np.ndarray:
    power = band_powers(clip_artefacts(x)) + P["power_floor"]
    de = differential_entropy(power)
    relative = power / power.sum(axis=-1, keepdims=True)
    alpha = np.log(power[..., _ALPHA])
    asym = np.stack([alpha[..., r] - alpha[..., l] for l, r in _PAIRS], axis=-1)  # noqa: E741
    flat = lambda a: a.reshape(*a.shape[:-2], -1)  # noqa: E731
    return np.concatenate([flat(de), flat(relative), asym], axis=-1).astype(np.float32)


def _check(raw: object, batch: bool) -> np.ndarray:
    x = as_finite_array("eeg", raw, (3,) if batch else (2,))
    expected = (SPEC.channels, SPEC.window_samples)
    if x.shape[-2:] != expected:
        raise ValueError(f"eeg: wrong shape {x.shape[-2:]}, expected (channels, samples) = {expected}")
    return x


def preprocess(raw: object) -> np.ndarray:
    """One (14, 256) window in microvolts -> DE (14 x 4), relative power (14 x 4), alpha asymmetry (3)."""
    return _features(_check(raw, batch=False))


def preprocess_batch(raws: list[object]) -> np.ndarray:
    """(N, 14, 256) in one Welch call."""
    if len(raws) == 0:
        return np.empty((0, *SPEC.input_shape), np.float32)
    return _features(np.stack([_check(r, batch=False) for r in raws]))
