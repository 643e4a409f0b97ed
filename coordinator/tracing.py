"""The coordinator's part of each window's trace: ingest, then fusion and publish of the emotion it feeds.

A frame whose traceparent says its window was sampled gets a coordinator.ingest span (receive -> stored)
under the edge's send span. A fused emotion continues the trace of its freshest contribution (the frame its
latency breakdown is measured from): coordinator.fuse (that frame's receive -> fusion) with links to the
other contributions' traces, then coordinator.publish (fusion -> appended and fanned out).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from opentelemetry import trace

from mmer.v1 import fusion_pb2, ingest_pb2
from mmer_core.telemetry import context_of

tracer = trace.get_tracer("mmer.coordinator")
REMEMBERED_FRAMES = 16_384  # sampled frames whose ingest span a later fusion may continue (~seconds of load)


def _attributes(frame: ingest_pb2.ScoreFrame | fusion_pb2.Contribution, hop: str, ms: float) -> dict:
    return {
        "mmer.modality": frame.modality,
        "mmer.device": frame.device_id,
        "mmer.seq": frame.seq,
        "mmer.hop": hop,
        "mmer.latency_ms": ms,
    }


class WindowTraces:
    """Ingest spans of sampled frames, remembered (bounded) until the fusion that uses them."""

    def __init__(self, keep: int = REMEMBERED_FRAMES) -> None:
        self.keep = keep
        self._ingested: OrderedDict[tuple[str, str, int], trace.SpanContext] = OrderedDict()

    def ingested(self, frame: ingest_pb2.ScoreFrame, receive_ns: int) -> None:
        """coordinator.ingest for a sampled frame, from its receipt to now (stored)."""
        parent = context_of(frame.traceparent) if frame.traceparent else None
        if parent is None:
            return
        attrs = _attributes(frame, "network", max(receive_ns - frame.send_ns, 0) / 1e6)
        span = tracer.start_span(
            "coordinator.ingest",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            start_time=receive_ns,
            attributes={**attrs, "mmer.subject": frame.subject_id},
        )
        span.end()
        if span.get_span_context().trace_flags.sampled:
            self._ingested[(frame.device_id, frame.modality, frame.seq)] = span.get_span_context()
            while len(self._ingested) > self.keep:
                self._ingested.popitem(last=False)

    def published(self, emotion: fusion_pb2.FusedEmotion, fused_ns: int) -> None:
        """coordinator.fuse and coordinator.publish in the trace of the freshest sampled contribution."""
        if not self._ingested:  # no sampled frame waits: nothing to continue, and no message read
            return
        traced = [
            (c, self._ingested[(c.device_id, c.modality, c.seq)])
            for c in emotion.contributions
            if (c.device_id, c.modality, c.seq) in self._ingested
        ]
        if not traced:
            return
        freshest, parent = min(traced, key=lambda t: t[0].age_ms)
        links = [trace.Link(ctx) for c, ctx in traced if c is not freshest]
        lat = emotion.latency
        common = {
            "mmer.subject": emotion.subject_id,
            "mmer.label": emotion.label,
            "mmer.window_end_ns": emotion.window_end_ns,
            "mmer.modalities": [c.modality for c in emotion.contributions],
        }
        fuse = tracer.start_span(
            "coordinator.fuse",
            context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
            links=links,
            start_time=fused_ns - int(lat.fuse_ms * 1e6),
            attributes={**_attributes(freshest, "fuse", lat.fuse_ms), **common},
        )
        fuse.end(end_time=fused_ns)
        publish = tracer.start_span(
            "coordinator.publish",
            context=trace.set_span_in_context(fuse),
            start_time=fused_ns,
            attributes={
                **_attributes(freshest, "publish", lat.publish_ms),
                **common,
                "mmer.position": emotion.position,
            },
        )
        publish.end(end_time=time.time_ns())
