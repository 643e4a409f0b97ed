"""The node's OpenTelemetry instruments (API only; mmer_core.telemetry configures the SDK)."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import metrics, trace

from mmer_core.telemetry import context_of, traceparent_of

meter = metrics.get_meter("mmer.edge")
tracer = trace.get_tracer("mmer.edge")

inference_ms = meter.create_histogram(
    "mmer.edge.inference.duration", unit="ms", description="inference per window"
)
preprocess_ms = meter.create_histogram(
    "mmer.edge.preprocess.duration", unit="ms", description="preprocessing"
)
frames_sent = meter.create_counter(
    "mmer.edge.frames.sent", description="frames handed to gRPC (replays included)"
)
frames_acked = meter.create_counter("mmer.edge.frames.acked", description="frames acked by the coordinator")
frames_dropped = meter.create_counter(
    "mmer.edge.frames.dropped", description="frames dropped by the spool policy"
)
windows_rejected = meter.create_counter("mmer.edge.windows.rejected", description="NaN/wrong-shape windows")
windows_no_face = meter.create_counter(
    "mmer.edge.windows.no_face", description="camera frames without a face"
)
windows_calibrating = meter.create_counter(
    "mmer.edge.windows.calibrating",
    description="windows not scored: the wearer's baseline is still calibrating",
)
reconnects = meter.create_counter("mmer.edge.reconnects", description="stream reconnects")
model_swaps = meter.create_counter("mmer.edge.model.swaps", description="model swaps by outcome")


def observe(name: str, description: str, read: Callable[[], list[tuple[float, dict[str, str]]]]) -> None:
    """Register an observable gauge fed by read() -> [(value, attributes)]."""

    def callback(_options):
        return [metrics.Observation(v, a) for v, a in read()]

    meter.create_observable_gauge(name, callbacks=[callback], description=description)


def frame_attributes(frame, hop: str, latency_ns: int) -> dict:
    """What every span of a window's trace says about its hop."""
    return {
        "mmer.modality": frame.modality,
        "mmer.device": frame.device_id,
        "mmer.subject": frame.subject_id,
        "mmer.seq": frame.seq,
        "mmer.hop": hop,
        "mmer.latency_ms": max(latency_ns, 0) / 1e6,
    }


def trace_window(frame, preprocess_start_ns: int, preprocess_end_ns: int) -> str:
    """Start the window's trace, recorded after the fact from its timestamps (coordinator clock):
    edge.window with children edge.preprocess and edge.inference. Returns the traceparent the
    frame carries to the send step, "" when the window is not sampled."""
    root = tracer.start_span(
        "edge.window",
        start_time=preprocess_start_ns,
        attributes=frame_attributes(frame, "edge", frame.inference_end_ns - preprocess_start_ns),
    )
    if not root.is_recording():
        return ""
    parent = trace.set_span_in_context(root)
    for name, hop, start, end in (
        ("edge.preprocess", "preprocess", preprocess_start_ns, preprocess_end_ns),
        ("edge.inference", "inference", frame.inference_start_ns, frame.inference_end_ns),
    ):
        span = tracer.start_span(
            name, context=parent, start_time=start, attributes=frame_attributes(frame, hop, end - start)
        )
        span.end(end_time=end)
    root.end(end_time=frame.inference_end_ns)
    return traceparent_of(root)


def trace_send(frame) -> str:
    """edge.send (inference end -> handed to gRPC, the spool hop) under the window's span; returns the
    traceparent the coordinator continues."""
    parent = context_of(frame.traceparent)
    if parent is None:
        return ""
    span = tracer.start_span(
        "edge.send",
        context=parent,
        start_time=frame.inference_end_ns,
        attributes=frame_attributes(frame, "spool", frame.send_ns - frame.inference_end_ns),
    )
    span.end(end_time=frame.send_ns)
    return traceparent_of(span)
