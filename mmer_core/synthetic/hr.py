"""A wrist's signals: heart beats, skin conductance and skin temperature that follow valence and arousal.

Higher arousal: faster heart, less vagal (beat-to-beat) variability, a higher
skin conductance level with more frequent skin conductance responses (SCRs),
and cooler skin (peripheral vasoconstriction). Positive valence: slightly more
variability. Respiratory sinus arrhythmia modulates the intervals at the
breathing rate; ectopic beats and detection misses are the artefacts a wrist
sensor really produces.
"""

from __future__ import annotations

import numpy as np

from mmer_core.synthetic.traits import Traits
from mmer_core.synthetic.trajectory import Trajectory


def beats(
    traits: Traits, trajectory: Trajectory, t0: float, t1: float, rng: np.random.Generator, noise: float
) -> np.ndarray:
    """(n, 2) rows of [beat_time_s, rr_s] for the beats in [t0, t1)."""
    t = t0 + rng.uniform(0.0, 0.8)
    out = []
    while t < t1:
        v, a = trajectory.valence_arousal(t)
        hr = traits.hr_base_bpm + traits.hr_gain_bpm * a - 3.0 * v
        rmssd = traits.rmssd_base_ms * (1.0 - 0.35 * a) * (1.0 + 0.35 * v)
        rsa = (rmssd / 1000.0) * 0.9 * np.sin(2 * np.pi * traits.resp_hz * t)
        rr = 60.0 / hr + rsa + rng.normal(0.0, rmssd / 1000.0 * 0.5)
        rr += rng.normal(0.0, 0.012 * noise)
        if rng.random() < 0.01 * noise:  # ectopic beat: short interval then compensatory pause
            rr *= rng.choice([0.6, 1.5])
        rr = float(np.clip(rr, 0.28, 2.2))
        t += rr
        if t < t1:
            out.append((t, rr))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


SKIN_HZ = 4.0  # the E4's EDA and temperature rate
SCR_RISE_S, SCR_DECAY_S = 1.0, 4.0


def scr_events(trajectory: Trajectory, t0: float, t1: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) rows of [onset_s, amplitude_us] of the SCRs starting in [t0, t1): a Poisson process whose rate
    grows with arousal (about 1 a minute at rest, 6 under stress)."""
    rate_per_s = (1.0 + 2.5 * (1.0 + trajectory.valence_arousal(0.5 * (t0 + t1))[1])) / 60.0
    onsets = np.sort(rng.uniform(t0, t1, rng.poisson(rate_per_s * (t1 - t0))))
    return np.column_stack([onsets, rng.uniform(0.05, 0.4, onsets.size)])


def skin(
    traits: Traits,
    trajectory: Trajectory,
    t0: float,
    t1: float,
    events: np.ndarray,
    rng: np.random.Generator,
    noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(EDA, temperature) samples in [t0, t1) at SKIN_HZ as (n, 2) rows of [time_s, value], with the SCRs of
    `events` (those of earlier blocks too, so a response runs on across a block boundary)."""
    t = np.arange(np.ceil(t0 * SKIN_HZ), np.ceil(t1 * SKIN_HZ)) / SKIN_HZ
    va = trajectory.valence_arousal(t).reshape(-1, 2)
    tonic = traits.eda_base_us * np.exp(traits.eda_gain * va[:, 1])
    since = t[:, None] - events[None, :, 0]
    shape = np.where(since > 0, np.exp(-since / SCR_DECAY_S) - np.exp(-since / SCR_RISE_S * 0.5), 0.0)
    eda = tonic + (shape * events[None, :, 1]).sum(axis=1) + rng.normal(0.0, 0.01 * noise, t.size)
    temp = traits.temp_base_c - 0.5 * va[:, 1] + 0.5 * va[:, 0] + rng.normal(0.0, 0.02 * noise, t.size)
    return np.column_stack([t, np.maximum(eda, 0.01)]), np.column_stack([t, temp])
