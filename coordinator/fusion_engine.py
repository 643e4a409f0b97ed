"""Per-subject fusion: frames aligned by window end into fusion windows, fused once each.

A fusion window [T - w, T) is fused when the first frame ending after T
arrives for that subject: by then every modality's frame for it has normally
arrived (frames of one device come in order). A modality counts if its latest
frame ending by T is not older than its staleness limit. Each window is fused
exactly once; late frames update the state for later windows only.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mmer.v1 import common_pb2, fusion_pb2, ingest_pb2
from mmer_core.fusion import Smoother, fuse

MAX_BACKLOG_WINDOWS = 5
HISTORY_PER_MODALITY = 64


@dataclass
class Received:
    """A stored frame with its coordinator receive time."""

    frame: ingest_pb2.ScoreFrame
    receive_ns: int


@dataclass
class SubjectState:
    """What the engine remembers about one subject."""

    frames: dict[str, deque[Received]] = field(default_factory=dict)
    next_window: int | None = None
    seq: int = 0


class FusionEngine:
    """Turns a subject's frames into FusedEmotions, one per fusion window."""

    def __init__(
        self,
        window_s: float,
        staleness_s: Mapping[str, float],
        strategy: str,
        smoothing_alpha: float = 0.0,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"fusion window must be positive, got {window_s}")
        self.window_ns = int(window_s * 1e9)
        self.staleness_ns = {m: int(s * 1e9) for m, s in staleness_s.items()}
        self.strategy = strategy
        self.weights = dict(weights or {})
        self.smoother = Smoother(smoothing_alpha)
        self.subjects: dict[str, SubjectState] = {}

    def add(self, frame: ingest_pb2.ScoreFrame, receive_ns: int) -> list[fusion_pb2.FusedEmotion]:
        """Take one new frame; return the fusion windows it completes (usually zero or one)."""
        state = self.subjects.setdefault(frame.subject_id, SubjectState())
        history = state.frames.setdefault(frame.modality, deque(maxlen=HISTORY_PER_MODALITY))
        history.append(Received(frame, receive_ns))
        window = frame.window_end_ns // self.window_ns
        if state.next_window is None:
            state.next_window = window
        start = max(state.next_window, window - MAX_BACKLOG_WINDOWS)
        out = []
        for w in range(start, window):
            emotion = self._fuse(frame.subject_id, state, (w + 1) * self.window_ns)
            if emotion is not None:
                out.append(emotion)
        state.next_window = max(state.next_window, window)
        return out

    def _fuse(self, subject: str, state: SubjectState, end_ns: int) -> fusion_pb2.FusedEmotion | None:
        chosen: dict[str, Received] = {}
        for modality, history in state.frames.items():
            limit = self.staleness_ns.get(modality, 3 * self.window_ns)
            fresh = [r for r in history if end_ns - limit < r.frame.window_end_ns <= end_ns]
            if fresh:
                chosen[modality] = max(fresh, key=lambda r: r.frame.window_end_ns)
        if not chosen:
            return None
        labels = tuple(next(iter(chosen.values())).frame.labels)
        scores = {m: np.asarray(r.frame.probs, dtype=np.float64) for m, r in chosen.items()}
        fused = fuse(scores, self.strategy, self.weights or None)
        probs = self.smoother.update(subject, fused.probs)
        fused_ns = time.time_ns()
        freshest = max(chosen.values(), key=lambda r: r.frame.window_end_ns)
        truths = Counter(r.frame.truth_label for r in chosen.values() if r.frame.truth_label)
        state.seq += 1
        return fusion_pb2.FusedEmotion(
            subject_id=subject,
            window_start_ns=end_ns - self.window_ns,
            window_end_ns=end_ns,
            label=labels[int(np.argmax(probs))],
            taxonomy=common_pb2.Taxonomy(name=freshest.frame.taxonomy, labels=labels),
            probs=probs.tolist(),
            contributions=[
                fusion_pb2.Contribution(
                    modality=m, weight=fused.weights[m], probs=list(r.frame.probs), device_id=r.frame.device_id,
                    seq=r.frame.seq, model_version=r.frame.model_version,
                    age_ms=(fused_ns - r.frame.window_end_ns) / 1e6,
                )
                for m, r in sorted(chosen.items())
            ],
            strategy=self.strategy,
            latency=breakdown(freshest, fused_ns),
            seq=state.seq,
            published_ns=fused_ns,  # fusion time until the coordinator publishes and overwrites it
            truth_label=truths.most_common(1)[0][0] if truths else "",
        )  # fmt: skip


def breakdown(received: Received, fused_ns: int) -> fusion_pb2.LatencyBreakdown:
    """Hop durations of one frame up to fusion (publish is filled in when published)."""
    f = received.frame
    ms = lambda a, b: max(b - a, 0) / 1e6  # noqa: E731
    return fusion_pb2.LatencyBreakdown(
        queue_ms=ms(f.window_end_ns, f.inference_start_ns),
        inference_ms=ms(f.inference_start_ns, f.inference_end_ns),
        spool_ms=ms(f.inference_end_ns, f.send_ns),
        network_ms=ms(f.send_ns, received.receive_ns),
        fuse_ms=ms(received.receive_ns, fused_ns),
    )
