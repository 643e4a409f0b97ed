"""The coordinator's /metrics is Prometheus text with latency histograms per hop and per-device gauges.

A real `mmer coordinator --http` process; frames and node status arrive over gRPC; the page is read with
prometheus_client's own text parser.
"""

from __future__ import annotations

import asyncio

import grpc
from prometheus_client.parser import text_string_to_metric_families

from mmer.v1 import ingest_pb2, ingest_pb2_grpc
from mmer_core.telemetry import LATENCY_BUCKETS_MS
from testkit.coordinator_helpers import coordinator_process, frame, http_get

FRAME_HOPS = ("queue", "inference", "spool", "network")


def get_metrics(http_port: int) -> str:
    status, content_type, body = http_get(f"http://127.0.0.1:{http_port}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return body


async def test_metrics_are_prometheus_text_with_hop_histograms_and_device_gauges() -> None:
    # every frame into the OpenTelemetry histograms (the default samples one in ten)
    async with coordinator_process({"MMER_COORDINATOR__METRICS_SAMPLE_EVERY": "1"}) as (grpc_port, http_port):
        frames = [frame(i, m, device="wearable-3") for i in range(1, 11) for m in ("hr", "eeg")]
        status = ingest_pb2.EdgeStatus(
            device_id="wearable-3", spool_depth=17, queue_depth=2, model_versions={"hr": 4, "eeg": 3}
        )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            call = ingest_pb2_grpc.IngestStub(ch).StreamScores()
            await call.write(ingest_pb2.ScoreBatch(frames=frames, batch_id=1, status=status))
            assert (await call.read()).acks
            await call.done_writing()
        families = {
            f.name: f for f in text_string_to_metric_families(await asyncio.to_thread(get_metrics, http_port))
        }

    hist = families["mmer_coordinator_hop_latency_milliseconds"]
    assert hist.type == "histogram"
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    counts: dict[tuple[str, str], float] = {}
    for s in hist.samples:
        key = (s.labels["hop"], s.labels["modality"])
        if s.name.endswith("_bucket"):
            buckets.setdefault(key, {})[float(s.labels["le"])] = s.value
        elif s.name.endswith("_count"):
            counts[key] = s.value
    for hop in FRAME_HOPS:
        for modality in ("hr", "eeg"):
            les = buckets[(hop, modality)]
            assert sorted(les)[:-1] == [float(b) for b in LATENCY_BUCKETS_MS]  # sub-ms buckets, then +Inf
            assert les[float("inf")] == counts[(hop, modality)] == 10
            assert list(les.values()) == sorted(les.values())  # cumulative
    # the helper frames spend 1 ms queued, 2 ms in inference, 1 ms in the spool: the buckets say so
    assert buckets[("inference", "hr")][1.0] == 0 and buckets[("inference", "hr")][2.5] == 10
    assert buckets[("queue", "eeg")][0.5] == 0 and buckets[("queue", "eeg")][1.0] == 10

    def gauge(name: str) -> dict[tuple, float]:
        own = lambda labels: tuple(sorted((k, v) for k, v in labels.items() if not k.startswith("otel_")))  # noqa: E731
        return {own(s.labels): s.value for s in families[name].samples}

    device = (("device", "wearable-3"),)  # never the subject: /metrics is for monitoring, not people
    assert gauge("mmer_coordinator_device_spool_depth") == {device: 17}
    assert gauge("mmer_coordinator_device_queue_depth") == {device: 2}
    assert gauge("mmer_coordinator_device_model_version") == {
        (("device", "wearable-3"), ("modality", "eeg")): 3,
        (("device", "wearable-3"), ("modality", "hr")): 4,
    }
    frames_total = {
        s.labels["outcome"]: s.value
        for s in families["mmer_coordinator_frames"].samples
        if s.name.endswith("_total") and s.labels["modality"] == "hr"
    }
    assert frames_total == {"stored": 10}


def test_histogram_buckets_for_the_dashboard_span_the_samples_and_keep_every_count() -> None:
    from coordinator.latency import Histogram

    h = Histogram()
    for ms in (0.5, 0.5, 2.0, 250_000.0):  # the last is past the largest edge (~100 s)
        h.add(ms)
    buckets = h.buckets()
    edges = [edge for edge, _ in buckets]
    assert edges == sorted(edges) and sum(c for _, c in buckets) == 4
    assert buckets[0][1] == 2 and 0.5 <= buckets[0][0] < 0.55  # upper edge of the 0.5 ms bucket
    assert buckets[-1] == (250_000.0, 1)  # the overflow bucket ends at the largest sample
    assert next(c for edge, c in buckets if edge >= 2.0) == 1
    assert Histogram().buckets() == []
