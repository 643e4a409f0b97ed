"""OpenTelemetry SDK set-up shared by the services, and the per-window trace context they pass along.

Services only use the OTel API (get_meter / get_tracer); this module decides where the data goes, from the
standard environment variables:
- OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): export spans and metrics over OTLP,
  with OTEL_EXPORTER_OTLP_PROTOCOL "grpc" (default) or "http/protobuf"; headers, certificates and timeouts
  are read by the exporters themselves (OTEL_EXPORTER_OTLP_HEADERS, ...).
- OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG: the SDK's samplers; unset, we sample 10 % of windows
  (parentbased_traceidratio, ratio OTEL_TRACES_SAMPLER_ARG or 0.1) and follow the edge's decision downstream.
- OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES: the resource (our service name is only the default).

One trace per scored window: the edge starts it, and since a gRPC stream's metadata carries one context for
the whole call, each frame carries its own W3C traceparent (ScoreFrame.traceparent) to the coordinator.
"""

from __future__ import annotations

import os

from opentelemetry import context, metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

DEFAULT_SAMPLE_RATIO = 0.1
# Histogram buckets for every instrument in milliseconds: sub-millisecond inference up to stalled links.
LATENCY_BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
_PROPAGATOR = TraceContextTextMapPropagator()
_configured = False


def sampler_from_env():
    """OTEL_TRACES_SAMPLER(_ARG) when set; else parent-based trace-id ratio (default 0.1)."""
    from opentelemetry.sdk.trace import sampling

    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return sampling._get_from_env_or_default()  # the SDK's own parser of the two variables
    text = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    try:
        ratio = float(text) if text else DEFAULT_SAMPLE_RATIO
    except ValueError:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG: expected a ratio in [0, 1], got {text!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG: expected a ratio in [0, 1], got {ratio}")
    return sampling.ParentBased(sampling.TraceIdRatioBased(ratio))


def resource_for(service_name: str):
    """The SDK resource; OTEL_SERVICE_NAME overrides our default name."""
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})


def otlp_enabled() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _otlp_exporters():
    """(span exporter, metric exporter) for OTEL_EXPORTER_OTLP_PROTOCOL."""
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: expected 'grpc' or 'http/protobuf', got {protocol!r}")
    return OTLPSpanExporter(), OTLPMetricExporter()


def build_tracer_provider(service_name: str, span_exporter=None):
    """A TracerProvider with the sampler and resource from the environment, batching to span_exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=resource_for(service_name), sampler=sampler_from_env())
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return provider


def setup_telemetry(service_name: str, prometheus: bool = False) -> None:
    """Install meter and tracer providers once per process."""
    global _configured
    if _configured:
        return
    from opentelemetry.sdk.metrics import MeterProvider

    span_exporter = metric_exporter = None
    if otlp_enabled():
        span_exporter, metric_exporter = _otlp_exporters()
    readers = []
    if prometheus:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers.append(PrometheusMetricReader())
    if metric_exporter is not None:
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(metric_exporter))
    from opentelemetry.metrics import Histogram
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    ms_buckets = View(
        instrument_type=Histogram,
        instrument_unit="ms",
        aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_MS),
    )
    metrics.set_meter_provider(
        MeterProvider(resource=resource_for(service_name), metric_readers=readers, views=[ms_buckets])
    )
    trace.set_tracer_provider(build_tracer_provider(service_name, span_exporter))
    _configured = True


def traceparent_of(span: trace.Span) -> str:
    """The span's W3C traceparent when it is sampled, else "" (nothing to continue downstream)."""
    ctx = span.get_span_context()
    if not (ctx.is_valid and ctx.trace_flags.sampled):
        return ""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def context_of(traceparent: str) -> context.Context | None:
    """The context a traceparent continues, or None when it is empty or malformed."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent}, context=context.Context())
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None
