"""Coloured noise and narrow-band oscillations, generated in the frequency domain."""

from __future__ import annotations

import numpy as np


def shaped_noise(rng: np.random.Generator, shape: tuple[int, ...], rate: float, gain) -> np.ndarray:
    """Gaussian noise of unit standard deviation whose spectrum is shaped by gain(freqs)."""
    n = shape[-1]
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    spec *= gain(np.fft.rfftfreq(n, 1.0 / rate))
    x = np.fft.irfft(spec, n=n, axis=-1)
    return x / (x.std(axis=-1, keepdims=True) + 1e-12)


def pink(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """1/f background (the EEG's spontaneous activity)."""
    return shaped_noise(rng, shape, rate, lambda f: 1.0 / np.sqrt(np.maximum(f, 0.5)))


def band(
    rng: np.random.Generator, shape: tuple[int, ...], rate: float, centre: float, width: float
) -> np.ndarray:
    """Narrow-band oscillation around centre Hz (Gaussian spectral bump of the given width)."""
    return shaped_noise(rng, shape, rate, lambda f: np.exp(-0.5 * ((f - centre) / width) ** 2))
