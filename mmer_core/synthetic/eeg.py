"""EEG: 1/f background, alpha whose frontal asymmetry follows valence, beta/alpha following arousal.

Positive valence means relatively more left-frontal activity, which is LESS
left-frontal alpha (alpha is idling); arousal lowers alpha and raises beta.
Blinks put large slow deflections on the frontal channels.
"""

from __future__ import annotations

import numpy as np

from mmer_core.modalities import EEG_CHANNELS
from mmer_core.synthetic.noise import band, pink
from mmer_core.synthetic.traits import Traits
from mmer_core.synthetic.trajectory import Trajectory

RATE = 128.0
LEFT_FRONTAL = np.isin(EEG_CHANNELS, ("AF3", "F7", "F3"))
RIGHT_FRONTAL = np.isin(EEG_CHANNELS, ("AF4", "F8", "F4"))
OCCIPITAL = np.isin(EEG_CHANNELS, ("O1", "O2", "P7", "P8"))
FRONTAL = np.isin(EEG_CHANNELS, ("AF3", "AF4", "F7", "F8"))


def signal(
    traits: Traits, trajectory: Trajectory, t0: float, n: int, rng: np.random.Generator, noise: float
) -> np.ndarray:
    """(14, n) microvolts starting at time t0."""
    t = t0 + np.arange(n) / RATE
    va = trajectory.valence_arousal(t)
    v, a = va[:, 0], va[:, 1]
    ch = len(EEG_CHANNELS)
    lateral = np.ones((ch, n))
    lateral[LEFT_FRONTAL] = 1.0 - traits.asym_gain * v
    lateral[RIGHT_FRONTAL] = 1.0 + traits.asym_gain * v
    # Brain state drifts from second to second: slow log-normal modulation, shared and per channel.
    slow = lambda shape: band(rng, shape, RATE, 0.0, 0.5)  # noqa: E731
    shared = np.exp(0.45 * noise * slow((2, n)))
    own = np.exp(0.3 * noise * slow((ch, n)))
    alpha_amp = traits.alpha_uv * (1.0 - 0.4 * a) * lateral * np.where(OCCIPITAL, 1.5, 1.0)[:, None]
    alpha_amp = alpha_amp * shared[0] * own
    beta_amp = traits.beta_uv * (1.0 + 0.6 * a) * shared[1]
    x = traits.pink_uv * pink(rng, (ch, n), RATE)
    x += alpha_amp * band(rng, (ch, n), RATE, traits.alpha_hz, 1.0)
    x += beta_amp * band(rng, (ch, n), RATE, 20.0, 4.0)
    x += 9.0 * noise * rng.standard_normal((ch, n))
    n_blinks = rng.poisson(0.25 * noise * n / RATE)
    for centre in rng.uniform(0, n, n_blinks):
        bump = 80.0 * np.exp(-0.5 * ((np.arange(n) - centre) / (0.08 * RATE)) ** 2)
        x[FRONTAL] += bump
    return x
