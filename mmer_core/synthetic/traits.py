"""Per-subject physiology, so that people differ and subject-independent splits are honest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Traits:
    """What makes one synthetic subject unlike another."""

    hr_base_bpm: float
    hr_gain_bpm: float
    rmssd_base_ms: float
    resp_hz: float
    alpha_hz: float
    alpha_uv: float
    beta_uv: float
    pink_uv: float
    asym_gain: float
    f0_hz: float
    vocal_tract: float
    speech_rate_hz: float
    face_width: float
    eye_gap: float
    mouth_width: float
    skin: float
    expressiveness: float
    eda_base_us: float
    eda_gain: float
    temp_base_c: float
    rest_valence: float  # a resting face: a mouth that turns down or up, brows, eyes, when nothing is shown
    rest_arousal: float


def sample_traits(rng: np.random.Generator) -> Traits:
    """Draw one subject's traits from population ranges."""
    female = rng.random() < 0.5
    return Traits(
        hr_base_bpm=rng.normal(70, 3.5),
        hr_gain_bpm=rng.normal(14, 2.0),
        rmssd_base_ms=rng.normal(42, 6),
        resp_hz=rng.uniform(0.2, 0.3),
        alpha_hz=rng.uniform(9.0, 11.0),
        alpha_uv=rng.uniform(7.0, 12.0),
        beta_uv=rng.uniform(2.0, 3.5),
        pink_uv=rng.uniform(5.0, 8.0),
        asym_gain=rng.uniform(0.2, 0.32),
        f0_hz=rng.normal(205, 18) if female else rng.normal(118, 12),
        vocal_tract=rng.uniform(1.05, 1.18) if female else rng.uniform(0.9, 1.02),
        speech_rate_hz=rng.uniform(3.2, 4.4),
        face_width=rng.uniform(0.78, 0.9),
        eye_gap=rng.uniform(0.32, 0.4),
        mouth_width=rng.uniform(0.3, 0.4),
        skin=rng.uniform(0.55, 0.8),
        expressiveness=rng.uniform(0.35, 0.9),
        eda_base_us=rng.lognormal(np.log(2.0), 0.6),
        eda_gain=rng.uniform(0.25, 0.6),
        temp_base_c=rng.normal(33.0, 1.0),
        rest_valence=rng.uniform(-0.2, 0.2),
        rest_arousal=rng.uniform(-0.2, 0.2),
    )
