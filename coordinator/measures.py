"""What the coordinator counts and times, in one place: ingest, fusion and the stats it reports share it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from coordinator.hop_recorder import HopRecorder
from coordinator.latency import LatencyBook
from coordinator.tracing import WindowTraces


@dataclass(frozen=True)
class Measures:
    """Counters, hop latencies (every frame in GetStats; a sample in the OpenTelemetry histograms) and the
    traces of sampled windows."""

    latency: LatencyBook
    hops: HopRecorder
    traces: WindowTraces = field(default_factory=WindowTraces)
    counters: Counter[str] = field(default_factory=Counter)

    @classmethod
    def new(cls, metrics_sample_every: int) -> Measures:
        """Empty measures; one frame in `metrics_sample_every` goes into the OpenTelemetry histograms."""
        latency = LatencyBook()
        return cls(latency, HopRecorder(latency, metrics_sample_every))
