"""Skin conductance (EDA) and skin temperature features of one wrist window.

EDA is split into a slow tonic level and fast phasic responses with neurokit2's "smoothmedian" method
(eda_phasic: tonic = a 4 s running median, phasic = the rest), and skin conductance responses (SCRs) are
found in the phasic part with neurokit2's "kim2004" method (eda_findpeaks: zero crossings of the smoothed
derivative, responses below a fraction of the largest dropped). Both are written here in numpy because
importing neurokit2 (pandas, scipy, scikit-learn, matplotlib) costs an edge node ~175 MB of memory, more
than its whole budget; tests/test_preprocess_skin.py checks them against neurokit2 itself.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mmer_core.modalities import EDA_FEATURES, SPECS, TEMP_FEATURES

P = SPECS["hr"].params


def on_grid(samples: np.ndarray, rate_hz: float) -> np.ndarray:
    """(time_s, value) samples linearly interpolated onto a regular grid from the first sample on, so
    any sensor rate and short dropouts give the same series."""
    t = samples[:, 0]
    grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * rate_hz + 1e-9)) + 1) / rate_hz
    return np.interp(grid, t, samples[:, 1])


def eda_phasic(eda: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(tonic, phasic) as neurokit2.eda_phasic(method="smoothmedian"): a running median of
    eda_median_s seconds (odd length, zero-padded ends, as scipy.signal.medfilt), and the remainder."""
    size = int(P["eda_median_s"] * rate_hz)
    size += 1 - size % 2
    padded = np.pad(eda, size // 2)
    tonic = np.median(sliding_window_view(padded, size), axis=1)
    return tonic, eda - tonic


def scr_peaks(phasic: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(peak indices, peak heights in microsiemens) of skin conductance responses, as
    neurokit2.eda_findpeaks(method="kim2004", amplitude_min=scr_amplitude_min); a trace without any rise and
    fall has none (where neurokit2 raises)."""
    size = int(rate_hz)
    window = np.bartlett(size + 1)[:-1]  # scipy.signal.get_window("bartlett", size): the periodic window
    weights = window / window.sum()
    df = np.diff(phasic)
    extended = np.concatenate([np.full(size, df[0]), df, np.full(size, df[-1])])
    df = np.convolve(weights, extended, mode="same")[size:-size]
    zeros = np.nonzero(np.abs(np.diff(np.sign(df))) > 0)[0]
    if zeros.size and np.all(df[: zeros[0]] > 0):
        zeros = zeros[1:]
    if zeros.size and np.all(df[zeros[-1] :] > 0):
        zeros = zeros[:-1]
    peaks, heights = [], []
    for i in range(0, len(zeros) - 1, 2):
        segment = phasic[zeros[i] : zeros[i + 1]]
        if segment.max() > 0:
            heights.append(segment.max())
            peaks.append(zeros[i] + int(np.argmax(segment)))
    if not heights:
        return np.empty(0, dtype=np.int64), np.empty(0)
    heights_arr = np.asarray(heights)
    keep = heights_arr > P["scr_amplitude_min"] * heights_arr.max()
    return np.asarray(peaks, dtype=np.int64)[keep], heights_arr[keep]


def eda_features(samples: np.ndarray | None) -> np.ndarray:
    """EDA_FEATURES of one window's (time_s, microsiemens) samples; eda_present 0 and the rest 0 when the
    device has no EDA or the window holds less than min_eda_s of it."""
    rate = P["eda_hz"]
    if samples is None or len(samples) < 2 or np.ptp(samples[:, 0]) < P["min_eda_s"]:
        return np.zeros(len(EDA_FEATURES))
    x = on_grid(samples, rate)
    tonic, phasic = eda_phasic(x, rate)
    _, heights = scr_peaks(phasic, rate)
    heights = heights[heights >= P["scr_min_us"]]
    minutes = len(x) / rate / 60.0
    t = np.arange(len(x)) / rate
    return np.array(
        [
            1.0,
            tonic.mean(),
            np.polyfit(t, tonic, 1)[0],
            phasic.std(),
            len(heights) / minutes,
            heights.mean() if heights.size else 0.0,
        ]
    )


def temp_features(samples: np.ndarray | None) -> np.ndarray:
    """TEMP_FEATURES of one window's (time_s, degrees C) samples; temp_present 0 and the rest 0 when the
    device has no thermometer or the window holds less than min_temp_s of it."""
    rate = P["temp_hz"]
    if samples is None or len(samples) < 2 or np.ptp(samples[:, 0]) < P["min_temp_s"]:
        return np.zeros(len(TEMP_FEATURES))
    x = on_grid(samples, rate)
    t = np.arange(len(x)) / rate
    return np.array([1.0, x.mean(), np.polyfit(t, x, 1)[0], x.std()])
