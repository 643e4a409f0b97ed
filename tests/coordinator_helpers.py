"""Frames and a running coordinator on 127.0.0.1 for the coordinator's tests."""

from __future__ import annotations

import time

from mmer.v1 import ingest_pb2
from mmer_core.taxonomy import QUADRANTS

PROBS = {
    "happy": [0.7, 0.1, 0.1, 0.1],
    "angry": [0.1, 0.7, 0.1, 0.1],
    "sad": [0.1, 0.1, 0.7, 0.1],
    "calm": [0.1, 0.1, 0.1, 0.7],
}


def frame(seq: int, modality: str = "hr", device: str = "dev-1", subject: str = "subj-1",
          end_ns: int | None = None, label: str = "happy", **overrides) -> ingest_pb2.ScoreFrame:  # fmt: skip
    """A valid frame whose window ended `end_ns` (default: seq * 0.5 s before now, in order)."""
    now = time.time_ns()
    end = end_ns if end_ns is not None else now - 120_000_000_000 + seq * 500_000_000
    f = ingest_pb2.ScoreFrame(
        device_id=device, subject_id=subject, modality=modality, seq=seq,
        window_start_ns=end - 1_000_000_000, window_end_ns=end, inference_start_ns=end + 1_000_000,
        inference_end_ns=end + 3_000_000, send_ns=end + 4_000_000, model_id=modality, model_version=1,
        taxonomy="quadrants", labels=list(QUADRANTS.labels), probs=PROBS[label], quality=1.0, truth_label=label,
    )  # fmt: skip
    for key, value in overrides.items():
        if isinstance(value, list):
            del getattr(f, key)[:]
            getattr(f, key).extend(value)
        else:
            setattr(f, key, value)
    return f


def batch(frames: list[ingest_pb2.ScoreFrame], batch_id: int = 1) -> ingest_pb2.ScoreBatch:
    return ingest_pb2.ScoreBatch(frames=frames, batch_id=batch_id)
