"""Wrist physiology: beats from PPG, and HR/HRV, skin conductance and skin temperature features of a window.

HRV follows the HRV standards (Task Force 1996): time-domain measures, and LF/HF from a Lomb-Scargle
periodogram only when the window is long enough to hold low-frequency cycles. EDA and temperature
features: mmer_core.preprocess.skin. A window is a mmer_core.wrist.WristData, or a 1-D array of RR
intervals (s) from a device that gives beats only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmer_core import dsp
from mmer_core.modalities import HR_FEATURES, SPECS
from mmer_core.preprocess._checks import as_finite_array
from mmer_core.preprocess.skin import eda_features, temp_features
from mmer_core.wrist import WristData, rr_only

SPEC = SPECS["hr"]
P = SPEC.params


def clean_rr(rr_s: np.ndarray) -> np.ndarray:
    """Mask of physiologically plausible intervals (not missed or extra beats, motion artefacts)."""
    return (rr_s >= P["min_rr_s"]) & (rr_s <= P["max_rr_s"])


def hrv_features(rr_s: object, times_s: object | None = None) -> np.ndarray:
    """BEAT_FEATURES of one window's RR intervals (s), at their beat times (s; accumulated RR if None)."""
    rr = as_finite_array("hr", rr_s, (1,))
    t = np.cumsum(rr) if times_s is None else as_finite_array("hr", times_s, (1,))
    if t.shape != rr.shape:
        raise ValueError(f"hr: {t.size} beat times for {rr.size} intervals")
    keep = clean_rr(rr)
    rr, t = rr[keep], t[keep]
    if rr.size < P["min_beats"]:
        raise ValueError(
            f"hr: too short: {rr.size} plausible beats in the window, need {int(P['min_beats'])}"
        )
    hr = 60.0 / rr
    diffs = np.diff(rr)
    slope = float(np.polyfit(t, hr, 1)[0]) if rr.size >= 3 and np.ptp(t) > 0 else 0.0
    lf_hf, valid = _lf_hf(t, rr)
    return np.array(
        [
            hr.mean(),
            rr.std() * 1000.0,
            np.sqrt(np.mean(diffs**2)) * 1000.0 if diffs.size else 0.0,
            np.mean(np.abs(diffs) > 0.05) if diffs.size else 0.0,
            hr.min(),
            hr.max(),
            slope,
            lf_hf,
            valid,
            float(rr.size),
        ]
    )


def _lf_hf(t: np.ndarray, rr: np.ndarray) -> tuple[float, float]:
    """log(LF/HF) from a Lomb-Scargle periodogram of the RR series; (0, 0) when the window is too short."""
    if t[-1] - t[0] < P["min_lfhf_s"] or rr.size < P["min_lfhf_beats"] or np.ptp(rr) == 0:
        return 0.0, 0.0
    freqs = np.linspace(P["lf_low_hz"], P["hf_high_hz"], int(P["lomb_scargle_freqs"]))
    power = dsp.lombscargle(t, rr - rr.mean(), 2 * np.pi * freqs)
    lf = power[freqs < P["lf_high_hz"]].sum()
    hf = power[freqs >= P["lf_high_hz"]].sum()
    if lf <= 0 or hf <= 0:
        return 0.0, 0.0
    return float(np.log(lf / hf)), 1.0


# Manifest params of an hr model trained on these optional channels: 1.0 when its windows must carry them
REQUIRES = {"eda": "requires_eda", "temp": "requires_temp"}


def check_channels(x: np.ndarray, params: Mapping[str, float]) -> None:
    """ValueError when a window's features (HR_FEATURES) lack a channel the model was trained on: a model
    that learnt from skin conductance reads its absence as a signal, so such windows are not scored."""
    for channel, param in REQUIRES.items():
        if params.get(param, 0.0) == 1.0 and x[HR_FEATURES.index(f"{channel}_present")] != 1.0:
            raise ValueError(
                f"hr: the model needs {channel}, and this window has none (a device without it "
                "needs a model trained without it)"
            )


def wrist_window(raw: object) -> WristData:
    """The window as WristData; a 1-D array is the RR intervals of a beat-only device."""
    if isinstance(raw, WristData):
        return raw
    return rr_only(as_finite_array("hr", raw, (1,)))


def wrist_features(raw: object) -> np.ndarray:
    """HR_FEATURES of one wrist window: beats (required), EDA and temperature (0 with a 0 flag when absent)."""
    w = wrist_window(raw)
    for name, arr in (("beats", w.beats), ("eda", w.eda), ("temp", w.temp)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise ValueError(
                f"hr: {name} has {int(np.count_nonzero(~np.isfinite(arr)))} NaN or infinite values"
            )
    if len(w.beats) == 0:
        raise ValueError("hr: input is empty (no beats in the window)")
    beats = hrv_features(w.beats[:, 1], w.beats[:, 0])
    return np.concatenate([beats, eda_features(w.eda), temp_features(w.temp)]).astype(np.float32)


def rr_from_ppg(ppg: object, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Beat times (s from the first sample) and plausible RR intervals (s) from a PPG/BVP trace.

    Band-pass 0.5-3 Hz (30-180 bpm) with a zero-phase Butterworth, then systolic
    peaks with a refractory distance of 0.35 s and a prominence relative to the
    signal's spread, so motion bursts and dicrotic notches don't become beats.
    Intervals outside min_rr_s..max_rr_s (missed or extra beats) are dropped
    together with the beat that ends them. Checked against the Empatica E4's own
    HR on the Stress-Predict recordings. scipy.signal is imported here, not at module level: only a
    PPG source needs it, and it would add ~80 MB to every edge node's memory.
    """
    try:
        from scipy import signal
    except ImportError:
        raise ImportError("hr: beat detection in a PPG needs scipy: pip install 'mmer[ppg]'") from None

    x = as_finite_array("hr", ppg, (1,))
    low, high = P["ppg_band_low_hz"], P["ppg_band_high_hz"]
    if not np.isfinite(fs) or fs <= 2 * high:
        raise ValueError(f"hr: PPG sample rate must be finite and above {2 * high:g} Hz, got {fs}")
    if x.size < P["ppg_min_s"] * fs:
        raise ValueError(f"hr: too short: PPG of {x.size / fs:.1f} s, need at least {P['ppg_min_s']:g} s")
    sos = signal.butter(int(P["ppg_filter_order"]), [low, high], btype="bandpass", fs=fs, output="sos")
    filtered = signal.sosfiltfilt(sos, x)
    spread = np.percentile(filtered, 95) - np.percentile(filtered, 5)
    peaks, _ = signal.find_peaks(
        filtered,
        distance=max(1, int(P["ppg_refractory_s"] * fs)),
        prominence=P["ppg_min_prominence"] * spread,
    )
    times = peaks / fs
    rr = np.diff(times)
    keep = (rr >= P["min_rr_s"]) & (rr <= P["max_rr_s"])
    return times[1:][keep], rr[keep]


def preprocess(raw: object) -> np.ndarray:
    """One wrist window -> features of shape SPEC.input_shape."""
    return wrist_features(raw)


def preprocess_batch(raws: list[object]) -> np.ndarray:
    """Windows hold different beat and sample counts, so this is a loop; each window is cheap."""
    return (
        np.stack([wrist_features(r) for r in raws]) if raws else np.empty((0, *SPEC.input_shape), np.float32)
    )
