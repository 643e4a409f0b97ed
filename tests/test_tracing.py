"""One trace per scored window across a real edge agent and a real coordinator over gRPC on 127.0.0.1.

Both run in this process (one tracer provider, spans kept in memory); everything between them is real:
tiny signed ONNX models, the synthetic source, the spool, Ingest.StreamScores, fusion and publish.
"""

from __future__ import annotations

from collections import defaultdict

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

from coordinator.assembly import open_coordinator
from coordinator.memory_store import MemoryStore
from coordinator.server import build_server
from edge_node.agent import Agent
from edge_node.clock import ClockEstimate
from edge_node.inference import load_runner
from edge_node.models import ModelSlot
from edge_node.sources import open_source
from edge_node.spool import Spool
from edge_node.streamer import Streamer
from mmer_core import telemetry
from mmer_core.bundle import load_public_key
from mmer_core.config import CoordinatorConfig
from testkit.edge_models import make_bundle
from testkit.memory_tracing import memory_spans

EDGE_HOPS = {"edge.preprocess": "preprocess", "edge.inference": "inference"}


async def run_edge_to_coordinator(tmp_path, modalities, seconds: float, fast: bool):
    """Score a synthetic session on a real agent streaming to a real coordinator; returns both."""
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    server, port, _ = await build_server(app, "127.0.0.1:0")
    keys, models = tmp_path / "keys", tmp_path / "models"
    for m in modalities:
        make_bundle(models / m, keys, m, 1)
    pub = load_public_key(keys / "trainer.pub")
    slots = {m: ModelSlot(m, load_runner(models / m, pub)) for m in modalities}
    spool, clock = Spool(tmp_path / "spool"), ClockEstimate()
    streamer = Streamer(lambda: grpc.aio.insecure_channel(f"127.0.0.1:{port}"), spool, clock, "wearable-7")
    agent = Agent("wearable-7", "subject-7", slots, spool, streamer, clock, pub, models)
    try:
        await agent.run(open_source("synthetic:5", list(modalities), "subject-7", fast=fast, seconds=seconds))
    finally:
        spool.close()
        await server.stop(None)
        await app.close()
    assert spool.depth == 0 and agent.counters.scored > 0
    return agent, app


def by_trace(spans: list[ReadableSpan]) -> dict[int, dict[str, list[ReadableSpan]]]:
    traces: dict[int, dict[str, list[ReadableSpan]]] = defaultdict(lambda: defaultdict(list))
    for s in spans:
        traces[s.context.trace_id][s.name].append(s)
    return traces


def only(spans: dict[str, list[ReadableSpan]], name: str) -> ReadableSpan:
    assert len(spans[name]) == 1, (name, {k: len(v) for k, v in spans.items()})
    return spans[name][0]


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


async def test_every_scored_window_is_one_linked_trace_through_fusion(tmp_path) -> None:
    exporter = memory_spans()
    agent, app = await run_edge_to_coordinator(tmp_path, ("eeg", "speech", "image"), 4.0, fast=False)
    spans = list(exporter.get_finished_spans())
    traces = by_trace(spans)
    windows = [t for t in traces.values() if "edge.window" in t]
    assert len(windows) == agent.counters.scored  # one trace per scored window, nothing merged
    seqs = defaultdict(list)
    for t in windows:
        root = only(t, "edge.window")
        assert root.parent is None
        attrs = root.attributes
        assert attrs["mmer.device"] == "wearable-7" and attrs["mmer.subject"] == "subject-7"
        seqs[attrs["mmer.modality"]].append(attrs["mmer.seq"])
        for name, hop in EDGE_HOPS.items():
            span = only(t, name)
            assert child_of(span, root) and span.attributes["mmer.hop"] == hop
            assert span.attributes["mmer.latency_ms"] == pytest.approx(
                (span.end_time - span.start_time) / 1e6
            )
        send = only(t, "edge.send")
        ingest = only(t, "coordinator.ingest")
        assert child_of(send, root) and child_of(ingest, send)
        for span in (root, send, ingest, *t["edge.preprocess"], *t["edge.inference"]):
            for key in ("mmer.modality", "mmer.device", "mmer.seq"):
                assert span.attributes[key] == attrs[key], (span.name, key)
            assert span.attributes["mmer.latency_ms"] >= 0
        assert send.attributes["mmer.hop"] == "spool" and ingest.attributes["mmer.hop"] == "network"
        assert root.start_time <= send.start_time <= send.end_time <= ingest.start_time + 50_000_000
    assert {m: sorted(s) for m, s in seqs.items()} == {m: list(range(1, len(s) + 1)) for m, s in seqs.items()}

    fused = [t for t in traces.values() if "coordinator.fuse" in t]
    assert len(fused) == app.counters["fused_emotions"] >= 2
    ingest_ids = {s.context.span_id for s in spans if s.name == "coordinator.ingest"}
    for t in fused:
        root = only(t, "edge.window")  # fusion continues the trace of a window: the full chain is there
        fuse, publish = only(t, "coordinator.fuse"), only(t, "coordinator.publish")
        assert child_of(fuse, only(t, "coordinator.ingest")) and child_of(publish, fuse)
        assert fuse.attributes["mmer.subject"] == "subject-7" and fuse.attributes["mmer.label"]
        assert fuse.attributes["mmer.seq"] == root.attributes["mmer.seq"]
        assert fuse.attributes["mmer.modality"] == root.attributes["mmer.modality"]
        contributions = len(fuse.attributes["mmer.modalities"])
        assert len(fuse.links) == contributions - 1  # the other contributing windows' traces
        assert all(link.context.span_id in ingest_ids for link in fuse.links)
        assert publish.attributes["mmer.hop"] == "publish" and publish.attributes["mmer.position"]

    stream = [s for s in spans if s.name == "/mmer.v1.Ingest/StreamScores"]
    opened = {s.context.span_id for s in spans if s.name == "edge.stream_open"}
    assert stream and all(s.parent.span_id in opened for s in stream)  # the call's gRPC metadata


async def test_the_coordinator_follows_the_edge_sampling_decision(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.3")
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    exporter = memory_spans(telemetry.sampler_from_env())
    agent, _ = await run_edge_to_coordinator(tmp_path, ("speech", "image"), 30.0, fast=True)
    traces = by_trace(list(exporter.get_finished_spans()))
    sampled = [t for t in traces.values() if "edge.window" in t]
    assert 0.15 * agent.counters.scored < len(sampled) < 0.45 * agent.counters.scored, len(sampled)
    for t in traces.values():
        if "coordinator.ingest" in t or "edge.send" in t:
            assert "edge.window" in t  # never a coordinator-only or half trace
    assert all("coordinator.ingest" in t and "edge.send" in t for t in sampled)


async def test_nothing_is_traced_when_the_edge_samples_nothing(tmp_path) -> None:
    exporter = memory_spans(ParentBased(ALWAYS_OFF))
    agent, app = await run_edge_to_coordinator(tmp_path, ("image",), 4.0, fast=True)
    names = {s.name for s in exporter.get_finished_spans()}
    assert agent.counters.scored == 20 and not names & {
        "edge.window",
        "coordinator.ingest",
        "coordinator.fuse",
    }
    assert not app.measures.traces._ingested


def test_sampler_follows_the_standard_environment(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    default = telemetry.sampler_from_env()
    assert isinstance(default, ParentBased) and "0.1" in default.get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    assert "0.25" in telemetry.sampler_from_env().get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    sampler = telemetry.sampler_from_env()
    assert isinstance(sampler, TraceIdRatioBased) and sampler.rate == 0.25
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert telemetry.sampler_from_env() is ALWAYS_OFF


@pytest.mark.parametrize("value", ["1.5", "-0.1", "often"])
def test_a_bad_sampler_ratio_is_refused_naming_the_variable(monkeypatch, value: str) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", value)
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER_ARG"):
        telemetry.sampler_from_env()


def test_service_name_and_otlp_exporters_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert not telemetry.otlp_enabled()
    assert telemetry.resource_for("mmer-edge").attributes["service.name"] == "mmer-edge"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "wrist-42")
    assert telemetry.resource_for("mmer-edge").attributes["service.name"] == "wrist-42"

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4317")
    assert telemetry.otlp_enabled()
    spans, _ = telemetry._otlp_exporters()
    assert type(spans).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc")
    assert spans._endpoint == "collector.example:4317"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318")
    spans, _ = telemetry._otlp_exporters()
    assert spans._endpoint == "http://collector.example:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        telemetry._otlp_exporters()


def test_traceparent_round_trip_and_malformed_input() -> None:
    from opentelemetry import trace

    memory_spans()
    span = trace.get_tracer("test").start_span("x")
    tp = telemetry.traceparent_of(span)
    span.end()
    assert tp.startswith(f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-")
    assert int(tp[-2:], 16) & 1  # the sampled flag
    ctx = telemetry.context_of(tp)
    assert trace.get_current_span(ctx).get_span_context().span_id == span.context.span_id
    assert telemetry.context_of("") is None and telemetry.context_of("00-zz-not-a-trace") is None
    assert telemetry.traceparent_of(trace.INVALID_SPAN) == ""
