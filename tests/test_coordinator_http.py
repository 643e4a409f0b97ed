"""The coordinator process end to end: --http serves the dashboard, SSE events and Prometheus metrics."""

from __future__ import annotations

import asyncio

import grpc

from mmer.v1 import ingest_pb2_grpc
from testkit.coordinator_helpers import batch, coordinator_process, frame, http_get


async def test_metrics_dashboard_and_clean_sigterm() -> None:
    async with coordinator_process() as (grpc_port, http_port):
        status, _, page = await asyncio.to_thread(http_get, f"http://127.0.0.1:{http_port}/")
        assert status == 200 and "dashboard.js" in page
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            call = ingest_pb2_grpc.IngestStub(ch).StreamScores()
            await call.write(batch([frame(1), frame(2), frame(3), frame(4)]))
            assert (await call.read()).acks[0].acked_seq == 4
            await call.done_writing()
        _, _, metrics = await asyncio.to_thread(http_get, f"http://127.0.0.1:{http_port}/metrics")
        assert "mmer_coordinator_hop_latency" in metrics
        assert 'hop="network"' in metrics and 'modality="hr"' in metrics
