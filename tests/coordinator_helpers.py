"""Frames and a running coordinator on 127.0.0.1 for the coordinator's tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from mmer.v1 import ingest_pb2
from mmer_core.taxonomy import QUADRANTS

PROBS = {
    "happy": [0.7, 0.1, 0.1, 0.1],
    "angry": [0.1, 0.7, 0.1, 0.1],
    "sad": [0.1, 0.1, 0.7, 0.1],
    "calm": [0.1, 0.1, 0.1, 0.7],
}


def frame(seq: int, modality: str = "hr", device: str = "dev-1", subject: str = "subj-1",
          end_ns: int | None = None, label: str = "happy", **overrides) -> ingest_pb2.ScoreFrame:  # fmt: skip
    """A valid frame whose window ended `end_ns` (default: seq * 0.5 s before now, in order)."""
    now = time.time_ns()
    end = end_ns if end_ns is not None else now - 120_000_000_000 + seq * 500_000_000
    f = ingest_pb2.ScoreFrame(
        device_id=device, subject_id=subject, modality=modality, seq=seq,
        window_start_ns=end - 1_000_000_000, window_end_ns=end, inference_start_ns=end + 1_000_000,
        inference_end_ns=end + 3_000_000, send_ns=end + 4_000_000, model_id=modality, model_version=1,
        taxonomy="quadrants", labels=list(QUADRANTS.labels), probs=PROBS[label], quality=1.0, truth_label=label,
    )  # fmt: skip
    for key, value in overrides.items():
        if isinstance(value, list):
            del getattr(f, key)[:]
            getattr(f, key).extend(value)
        else:
            setattr(f, key, value)
    return f


def batch(frames: list[ingest_pb2.ScoreFrame], batch_id: int = 1) -> ingest_pb2.ScoreBatch:
    return ingest_pb2.ScoreBatch(frames=frames, batch_id=batch_id)


ROOT = Path(__file__).resolve().parents[1]


def http_get(url: str, token: str = "") -> tuple[int, str, str]:
    """(status, content type, body) of a GET with a short timeout, with a bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as r:
        return r.status, r.headers["Content-Type"], r.read().decode()


def spawn_coordinator(
    grpc_port: int, http_port: int, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A real `mmer coordinator` on the given loopback ports (see `wait_ready`), its stderr piped."""
    cmd = [sys.executable, "-m", "mmer_core.cli", "coordinator", "--listen", f"127.0.0.1:{grpc_port}",
           "--http", f"127.0.0.1:{http_port}", *args]  # fmt: skip
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'protos'}", **(env or {})}
    return subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(proc: subprocess.Popen, http_port: int, timeout_s: float = 20.0) -> None:
    """Until the coordinator's /healthz answers; fails the test with its stderr if it exits or never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await asyncio.to_thread(http_get, f"http://127.0.0.1:{http_port}/healthz")
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"coordinator did not start: {proc.stderr.read().decode()[-2000:]}")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def coordinator_process(
    env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> AsyncIterator[tuple[int, int]]:
    """A real `mmer coordinator --http` (memory store unless `args` say otherwise) on free loopback ports.

    Yields (grpc_port, http_port) once it is ready; on exit it is stopped with SIGTERM and must exit 0
    (clean shutdown)."""
    from bench.localhost import free_port

    grpc_port, http_port = free_port(), free_port()
    proc = spawn_coordinator(grpc_port, http_port, args, env)
    try:
        await wait_ready(proc, http_port)
        yield grpc_port, http_port
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
