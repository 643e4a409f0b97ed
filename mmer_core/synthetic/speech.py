"""Voiced speech whose pitch, pitch range, loudness, brightness and rate follow arousal and valence.

A glottal pulse train (sawtooth) at a time-varying f0, shaped into syllables
with pauses, passed through three formant resonators. Aroused speech is
higher, louder, faster and brighter; positive valence raises pitch slightly,
widens the melody and shifts formants up (the smile).
"""

from __future__ import annotations

import numpy as np

from mmer_core import dsp
from mmer_core.synthetic.traits import Traits
from mmer_core.synthetic.trajectory import Trajectory

RATE = 16000.0
CONTROL_HZ = 100.0
FORMANTS_HZ = ((600.0, 80.0), (1500.0, 120.0), (2600.0, 160.0))


def _resonator(freq: float, bw: float) -> tuple[float, np.ndarray]:
    """Gain and denominator of a two-pole resonator at freq with bandwidth bw (Hz)."""
    r = np.exp(-np.pi * bw / RATE)
    theta = 2 * np.pi * freq / RATE
    return 1.0 - r, np.array([1.0, -2 * r * np.cos(theta), r * r])


def signal(
    traits: Traits, trajectory: Trajectory, t0: float, n: int, rng: np.random.Generator, noise: float
) -> np.ndarray:
    """n samples of audio in [-1, 1] starting at time t0."""
    n_ctrl = int(np.ceil(n / RATE * CONTROL_HZ)) + 2
    tc = t0 + np.arange(n_ctrl) / CONTROL_HZ
    va = trajectory.valence_arousal(tc)
    v, a = va[:, 0], va[:, 1]
    ts = np.arange(n) / RATE
    up = lambda x: np.interp(ts, (tc - t0), x)  # noqa: E731

    rate_hz = up(traits.speech_rate_hz * (1.0 + 0.25 * a + 0.05 * v))
    syl_phase = 2 * np.pi * np.cumsum(rate_hz) / RATE + rng.uniform(0, 2 * np.pi)
    envelope = np.maximum(0.0, np.sin(syl_phase)) ** 1.5
    pauses = np.repeat(rng.random(int(np.ceil(n / (0.4 * RATE))) + 1) < 0.25, int(0.4 * RATE))[:n]
    envelope[pauses] *= 0.05

    melody_range = up(0.06 + 0.07 * (a + 1) / 2 + 0.05 * v)
    melody = np.sin(2 * np.pi * 0.8 * ts + rng.uniform(0, 2 * np.pi)) * melody_range
    f0 = up(traits.f0_hz * (1.0 + 0.22 * a + 0.06 * v)) * (1.0 + melody)
    f0 *= 1.0 + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(np.arange(1, n + 1))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    source = dsp.sawtooth(phase)
    bright = up(0.5 + 0.4 * a)
    dark = dsp.allpole_filter(0.15, [1.0, -0.85], source)
    source = bright * source + (1.0 - bright) * dark

    shift = traits.vocal_tract * (1.0 + 0.06 * float(v.mean()))
    voiced = sum(dsp.allpole_filter(*_resonator(f * shift, bw), source) for f, bw in FORMANTS_HZ)
    voiced /= np.abs(voiced).max() + 1e-9
    loud = up(0.25 * (1.0 + 0.7 * a))
    audio = loud * envelope * voiced
    audio += (0.004 + 0.02 * noise) * rng.standard_normal(n)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)
