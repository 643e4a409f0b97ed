"""Heart beats whose rate follows arousal and whose variability follows arousal and valence.

Higher arousal: faster heart, less vagal (beat-to-beat) variability. Positive
valence: slightly more variability. Respiratory sinus arrhythmia modulates the
intervals at the breathing rate; ectopic beats and detection misses are the
artefacts a wrist sensor really produces.
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
