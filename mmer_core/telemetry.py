"""OpenTelemetry SDK set-up shared by the services: metrics (Prometheus and/or OTLP) and sampled traces.

Services only use the OTel API (get_meter / get_tracer); this module decides where the data goes.
OTLP is used when OTEL_EXPORTER_OTLP_ENDPOINT is set; the trace sampler honours OTEL_TRACES_SAMPLER_ARG
(ratio, default 0.1) and follows the caller's sampling decision when a trace is continued.
"""

from __future__ import annotations

import os

from opentelemetry import metrics, trace

_configured = False


def setup_telemetry(service_name: str, prometheus: bool = False) -> None:
    """Install meter and tracer providers once per process."""
    global _configured
    if _configured:
        return
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create({"service.name": service_name})
    readers = []
    if prometheus:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers.append(PrometheusMetricReader())
    otlp = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if otlp:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "0.1"))
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(ratio)))
    if otlp:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
