"""The coordinator process end to end: --http serves the dashboard, SSE events and Prometheus metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from mmer.v1 import ingest_pb2_grpc
from tests.conftest import free_port
from tests.coordinator_helpers import batch, frame

ROOT = Path(__file__).resolve().parents[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status, r.read().decode()


async def test_metrics_dashboard_and_clean_sigterm() -> None:
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'protos'}"}
    cmd = [sys.executable, "-m", "mmer_core.cli", "coordinator", "--listen", f"127.0.0.1:{grpc_port}",
           "--http", f"127.0.0.1:{http_port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, page = await asyncio.to_thread(get, f"http://127.0.0.1:{http_port}/")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"coordinator did not start: {proc.stderr.read().decode()[-2000:]}")
                await asyncio.sleep(0.2)
        assert status == 200 and "dashboard.js" in page
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            call = ingest_pb2_grpc.IngestStub(ch).StreamScores()
            await call.write(batch([frame(1), frame(2), frame(3), frame(4)]))
            assert (await call.read()).acks[0].acked_seq == 4
            await call.done_writing()
        _, metrics = await asyncio.to_thread(get, f"http://127.0.0.1:{http_port}/metrics")
        assert "mmer_coordinator_hop_latency" in metrics
        assert 'hop="network"' in metrics and 'modality="hr"' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
