"""One in-memory span exporter for the whole test session, behind a sampler each test can set.

The OpenTelemetry tracer provider is global and can be set once per process, so every test that looks at
spans goes through here instead of installing its own provider.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler


class SwitchSampler(Sampler):
    """Delegates to `inner`, which a test may replace."""

    def __init__(self) -> None:
        self.inner: Sampler = ParentBased(ALWAYS_ON)

    def should_sample(self, *args, **kwargs):
        return self.inner.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return f"switch({self.inner.get_description()})"


EXPORTER = InMemorySpanExporter()
SAMPLER = SwitchSampler()


def memory_spans(sampler: Sampler | None = None) -> InMemorySpanExporter:
    """The session's exporter, emptied, with `sampler` (default: parent-based always-on) in force."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(sampler=SAMPLER)
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    elif provider.sampler is not SAMPLER:
        pytest.skip("the global tracer provider was set outside tests/memory_tracing.py")
    SAMPLER.inner = sampler or ParentBased(ALWAYS_ON)
    EXPORTER.clear()
    return EXPORTER
