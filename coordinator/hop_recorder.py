"""Hop latencies of every frame and fused emotion, recorded in bulk.

Edge nodes send small batches (a frame or two each when the coordinator keeps
up), and a numpy pass or an OpenTelemetry call per batch cost more than the
rest of ingest. So samples wait here as plain tuples and go into the GetStats
histograms (every sample) and the OpenTelemetry histogram (one in
`sample_every` per modality, as traces are sampled) in one pass per
FLUSH_ROWS samples or FLUSH_S seconds; readers flush before they read.
"""

from __future__ import annotations

import time
from collections import Counter
from itertools import chain

import numpy as np
from opentelemetry import metrics

from coordinator.latency import LatencyBook
from coordinator.validation import Times

FRAME_HOPS = ("queue", "inference", "spool", "network")
EMOTION_HOPS = ("wait", "fuse", "publish", "total", "added")
FLUSH_ROWS = 4096
FLUSH_S = 0.25


class HopRecorder:
    """Buffers (frame and emotion) hop samples; flush() moves them into the histograms."""

    def __init__(self, book: LatencyBook, sample_every: int) -> None:
        self.book = book
        self.sample_every = sample_every
        meter = metrics.get_meter("mmer.coordinator")
        self._otel_latency = meter.create_histogram(
            "mmer.coordinator.hop_latency", unit="ms", description="latency per hop and modality"
        )
        self._otel_frames = meter.create_counter("mmer.coordinator.frames", description="frames by outcome")
        self._frames: list[Times] = []
        self._modalities: list[str] = []
        self._emotions: list[tuple[float, float, float, float, float]] = []
        self._seen: Counter[str] = Counter()  # samples per modality ("" = emotions), for sample_every
        self._flushed = time.monotonic()

    def frame_times(self, modalities: list[str], times: list[Times]) -> None:
        """The device-side hops of stored frames: each frame's modality and its five times (window end,
        inference start and end, send, receive)."""
        self._frames += times
        self._modalities += modalities
        self._maybe_flush()

    def emotion(self, wait_ms: float, fuse_ms: float, publish_ms: float, total_ms: float) -> None:
        """The coordinator-side hops of one published emotion ("added" = fuse + publish: its own work)."""
        self._emotions.append((wait_ms, fuse_ms, publish_ms, total_ms, fuse_ms + publish_ms))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if (
            len(self._frames) + len(self._emotions) >= FLUSH_ROWS
            or time.monotonic() - self._flushed > FLUSH_S
        ):
            self.flush()

    def flush(self) -> None:
        """Everything buffered into the histograms and counters now."""
        self._flushed = time.monotonic()
        if self._frames:
            rows = len(self._frames)
            t = np.fromiter(chain.from_iterable(self._frames), np.int64, count=5 * rows).reshape(rows, 5)
            ms = np.maximum(np.diff(t, axis=1), 0) / 1e6
            modalities, self._frames, self._modalities = self._modalities, [], []
            self.book.add_rows(FRAME_HOPS, modalities, ms)
            for modality, n in Counter(modalities).items():
                self._otel_frames.add(n, {"outcome": "stored", "modality": modality})
            self._record_sampled(FRAME_HOPS, modalities, ms)
        if self._emotions:
            ms = np.array(self._emotions, dtype=np.float64)
            self._emotions = []
            self.book.add_rows(EMOTION_HOPS, [""] * len(ms), ms)
            self._record_sampled(EMOTION_HOPS, [""] * len(ms), ms)

    def _record_sampled(self, hops: tuple[str, ...], modalities: list[str], ms: np.ndarray) -> None:
        """Every `sample_every`-th sample of each modality into the OpenTelemetry histogram: the rows in
        between cost one array comparison, not a call each."""
        every, seen = self.sample_every, self._seen
        names = np.array(modalities)
        for modality in set(modalities):
            rows = np.flatnonzero(names == modality)
            picked = rows[(seen[modality] + np.arange(len(rows))) % every == 0]
            seen[modality] += len(rows)
            attributes = [{"hop": hop, "modality": modality or "all"} for hop in hops]
            for values in ms[picked].tolist():
                for value, attrs in zip(values, attributes, strict=True):
                    self._otel_latency.record(value, attrs)
