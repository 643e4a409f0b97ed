"""A subject's valence/arousal over a session: emotion segments joined by smooth transitions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmer_core.taxonomy import QUADRANT_OF

# Where each quadrant's segment aims on the circumplex (valence, arousal in [-1, 1]).
TARGET_STRENGTH = 0.7


class Trajectory:
    """Piecewise emotion segments; valence/arousal move between targets with a raised-cosine ramp.

    The label of time t is its segment's; segment boundaries sit at the middle
    of each transition, where valence/arousal are halfway between two targets.
    """

    def __init__(
        self, segments: Sequence[tuple[str, float]], transition_s: float, wander: np.ndarray
    ) -> None:
        if not segments:
            raise ValueError("trajectory: at least one segment is needed")
        for label, duration in segments:
            if label not in QUADRANT_OF:
                raise ValueError(
                    f"trajectory: unknown segment label {label!r} (known: {sorted(QUADRANT_OF)})"
                )
            if duration <= 0:
                raise ValueError(f"trajectory: segment {label!r} has non-positive duration {duration}")
        self.labels = [label for label, _ in segments]
        self.bounds = np.concatenate([[0.0], np.cumsum([d for _, d in segments])])
        self.transition_s = transition_s
        self.targets = (
            np.array([QUADRANT_OF[label] for label in self.labels], dtype=np.float64) * TARGET_STRENGTH
        )
        self._wander = wander  # (2, k, 3): per-subject slow drift of valence and arousal (amp, freq, phase)

    @property
    def duration_s(self) -> float:
        return float(self.bounds[-1])

    def segment_index(self, t: np.ndarray | float) -> np.ndarray:
        """Index of the segment holding each time (times past the end stay in the last segment)."""
        idx = np.searchsorted(self.bounds, np.asarray(t, dtype=np.float64), side="right") - 1
        return np.clip(idx, 0, len(self.labels) - 1)

    def label_at(self, t: float) -> str:
        """The true label at time t."""
        return self.labels[int(self.segment_index(t))]

    def valence_arousal(self, t: np.ndarray | float) -> np.ndarray:
        """(..., 2) valence and arousal at the given times."""
        t = np.asarray(t, dtype=np.float64)
        idx = self.segment_index(t)
        va = self.targets[idx].copy()
        half = self.transition_s / 2
        if half > 0 and len(self.labels) > 1:
            nxt = np.minimum(idx + 1, len(self.labels) - 1)
            prv = np.maximum(idx - 1, 0)
            to_next = self.bounds[idx + 1] - t
            from_prev = t - self.bounds[idx]
            w_next = np.where((to_next < half) & (nxt != idx), 0.5 * (1 - to_next / half), 0.0)
            w_prev = np.where((from_prev < half) & (prv != idx), 0.5 * (1 - from_prev / half), 0.0)
            w_next = 0.5 - 0.5 * np.cos(np.pi * w_next)
            w_prev = 0.5 - 0.5 * np.cos(np.pi * w_prev)
            va = (
                va * (1 - w_next - w_prev)[..., None]
                + self.targets[nxt] * w_next[..., None]
                + self.targets[prv] * w_prev[..., None]
            )
        amp, freq, phase = self._wander[..., 0], self._wander[..., 1], self._wander[..., 2]
        drift = (amp * np.sin(2 * np.pi * freq * t[..., None, None] + phase)).sum(axis=-1)
        return np.clip(va + drift, -1.0, 1.0)


def random_segments(
    rng: np.random.Generator, duration_s: float, min_s: float = 20.0, max_s: float = 60.0
) -> list[tuple[str, float]]:
    """Emotion segments covering duration_s, each a different label from the one before."""
    labels = list(QUADRANT_OF)
    segments: list[tuple[str, float]] = []
    total, previous = 0.0, None
    while total < duration_s:
        label = str(rng.choice([lab for lab in labels if lab != previous]))
        length = float(min(rng.uniform(min_s, max_s), duration_s - total))
        if length < min_s / 2 and segments:
            segments[-1] = (segments[-1][0], segments[-1][1] + length)
            break
        segments.append((label, length))
        total += length
        previous = label
    return segments
