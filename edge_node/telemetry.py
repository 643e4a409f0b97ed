"""The node's OpenTelemetry instruments (API only; mmer_core.telemetry configures the SDK)."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import metrics, trace

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
reconnects = meter.create_counter("mmer.edge.reconnects", description="stream reconnects")
model_swaps = meter.create_counter("mmer.edge.model.swaps", description="model swaps by outcome")


def observe(name: str, description: str, read: Callable[[], list[tuple[float, dict[str, str]]]]) -> None:
    """Register an observable gauge fed by read() -> [(value, attributes)]."""

    def callback(_options):
        return [metrics.Observation(v, a) for v, a in read()]

    meter.create_observable_gauge(name, callbacks=[callback], description=description)
