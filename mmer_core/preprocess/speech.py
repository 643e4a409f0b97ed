"""Speech: log-mel spectrogram with a real (HTK-scale, triangular) mel filterbank."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.preprocess._checks import as_finite_array

SPEC = SPECS["speech"]
P = SPEC.params
N_FFT = int(P["n_fft"])
WIN = int(P["win_length"])
HOP = int(P["hop_length"])
N_MELS = int(P["n_mels"])


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of hz_to_mel."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges(n_mels: int = N_MELS, fmin: float = P["fmin"], fmax: float = P["fmax"]) -> np.ndarray:
    """n_mels + 2 frequencies (Hz): band k spans edges[k]..edges[k+2] and peaks at edges[k+1]."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


@lru_cache(maxsize=8)
def mel_filterbank(
    sr: float = SPEC.sample_rate_hz,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = P["fmin"],
    fmax: float = P["fmax"],
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, area-normalised (Slaney) so bands are comparable."""
    edges = mel_band_edges(n_mels, fmin, fmax)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lower = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    fb = np.maximum(0.0, np.minimum(lower, upper))
    fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    fb.setflags(write=False)
    return fb


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    w = np.zeros(N_FFT)
    w[:WIN] = np.hanning(WIN + 1)[:-1]
    return w


def _logmel(x: np.ndarray) -> np.ndarray:
    """(N, samples) -> (N, n_mels, frames, 1) float32."""
    n_frames = 1 + (x.shape[-1] - WIN) // HOP
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n_frames)[:, None]
    frames = np.zeros((x.shape[0], n_frames, N_FFT))
    frames[..., :WIN] = x[:, idx]
    spec = np.abs(np.fft.rfft(frames * _window(), axis=-1)) ** 2
    mel = spec @ mel_filterbank().T
    return np.log(mel + P["log_floor"]).transpose(0, 2, 1)[..., None].astype(np.float32)


def _check(raw: object) -> np.ndarray:
    x = as_finite_array("speech", raw, (1,))
    if x.size < SPEC.window_samples:
        raise ValueError(f"speech: too short: {x.size} samples, need {SPEC.window_samples} (1 s at 16 kHz)")
    if x.size > SPEC.window_samples:
        raise ValueError(f"speech: too long: {x.size} samples, a window is {SPEC.window_samples}")
    return x


def preprocess(raw: object) -> np.ndarray:
    """One 1 s window (16000 samples in [-1, 1]) -> log-mel (40, 98, 1)."""
    return _logmel(_check(raw)[None, :])[0]


def preprocess_batch(raws: list[object]) -> np.ndarray:
    """Stack and transform in one FFT call."""
    if len(raws) == 0:
        return np.empty((0, *SPEC.input_shape), np.float32)
    return _logmel(np.stack([_check(r) for r in raws]))
