"""EEG: log band powers per channel plus frontal alpha asymmetry.

Alpha asymmetry (ln right - ln left) indexes approach motivation / valence;
the beta/alpha balance indexes arousal: the two axes of the quadrants.
"""

from __future__ import annotations

import numpy as np

from mmer_core import dsp
from mmer_core.modalities import EEG_ASYMMETRY_PAIRS, EEG_BANDS, EEG_CHANNELS, SPECS
from mmer_core.preprocess._checks import as_finite_array

SPEC = SPECS["eeg"]
_ALPHA = [name for name, _, _ in EEG_BANDS].index("alpha")
_PAIRS = [(EEG_CHANNELS.index(left), EEG_CHANNELS.index(right)) for left, right in EEG_ASYMMETRY_PAIRS]


def band_powers(x: np.ndarray) -> np.ndarray:
    """Welch band power per channel: (..., channels, samples) -> (..., channels, bands), linear scale."""
    nperseg = min(int(SPEC.params["welch_nperseg"]), x.shape[-1])
    noverlap = int(nperseg * SPEC.params["welch_overlap"])
    freqs, psd = dsp.welch(x, SPEC.sample_rate_hz, nperseg, noverlap)
    df = freqs[1] - freqs[0]
    out = [psd[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1) * df for _, lo, hi in EEG_BANDS]
    return np.stack(out, axis=-1)


def _features(x: np.ndarray) -> np.ndarray:
    power = band_powers(x) + SPEC.params["power_floor"]
    log_power = np.log10(power)
    alpha = np.log(power[..., _ALPHA])
    asym = np.stack([alpha[..., r] - alpha[..., l] for l, r in _PAIRS], axis=-1)  # noqa: E741
    flat = log_power.reshape(*log_power.shape[:-2], -1)
    return np.concatenate([flat, asym], axis=-1).astype(np.float32)


def _check(raw: object, batch: bool) -> np.ndarray:
    x = as_finite_array("eeg", raw, (3,) if batch else (2,))
    expected = (SPEC.channels, SPEC.window_samples)
    if x.shape[-2:] != expected:
        raise ValueError(f"eeg: wrong shape {x.shape[-2:]}, expected (channels, samples) = {expected}")
    return x


def preprocess(raw: object) -> np.ndarray:
    """One (14, 256) window in microvolts -> 73 features."""
    return _features(_check(raw, batch=False))


def preprocess_batch(raws: list[object]) -> np.ndarray:
    """(N, 14, 256) in one Welch call."""
    if len(raws) == 0:
        return np.empty((0, *SPEC.input_shape), np.float32)
    return _features(np.stack([_check(r, batch=False) for r in raws]))
