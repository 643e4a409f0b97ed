"""Frames, signed bundles and running coordinators on 127.0.0.1 for the coordinator's tests."""

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

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mmer.v1 import common_pb2, ingest_pb2, manifest_pb2, registry_pb2
from mmer_core import bundle
from mmer_core.taxonomy import QUADRANTS
from testkit.localhost import free_port

PROBS = {
    "happy": [0.7, 0.1, 0.1, 0.1],
    "angry": [0.1, 0.7, 0.1, 0.1],
    "sad": [0.1, 0.1, 0.7, 0.1],
    "calm": [0.1, 0.1, 0.1, 0.7],
}


def frame(
    seq: int,
    modality: str = "hr",
    device: str = "dev-1",
    subject: str = "subj-1",
    end_ns: int | None = None,
    label: str = "happy",
    **overrides,
) -> ingest_pb2.ScoreFrame:
    """A valid frame whose window ended `end_ns` (default: seq * 0.5 s before now, in order)."""
    now = time.time_ns()
    end = end_ns if end_ns is not None else now - 120_000_000_000 + seq * 500_000_000
    f = ingest_pb2.ScoreFrame(
        device_id=device,
        subject_id=subject,
        modality=modality,
        seq=seq,
        window_start_ns=end - 1_000_000_000,
        window_end_ns=end,
        inference_start_ns=end + 1_000_000,
        inference_end_ns=end + 3_000_000,
        send_ns=end + 4_000_000,
        model_id=modality,
        model_version=1,
        taxonomy="quadrants",
        labels=list(QUADRANTS.labels),
        probs=PROBS[label],
        quality=1.0,
        truth_label=label,
    )
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
    cmd = [sys.executable, "-m", "mmer_cli", "coordinator", "--listen", f"127.0.0.1:{grpc_port}"]
    cmd += ["--http", f"127.0.0.1:{http_port}", *args]
    return subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


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
    grpc_port, http_port = free_port(), free_port()
    proc = spawn_coordinator(grpc_port, http_port, args, env)
    try:
        await wait_ready(proc, http_port)
        yield grpc_port, http_port
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def start_replica(store: str, *args: str) -> tuple[subprocess.Popen, str]:
    """A `mmer coordinator` process on free loopback ports using `store`; returns it and its gRPC target."""
    port = free_port()
    cmd = [sys.executable, "-m", "mmer_cli", "coordinator", "--listen", f"127.0.0.1:{port}", "--store", store]
    cmd += ["--http", f"127.0.0.1:{free_port()}", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"127.0.0.1:{port}"


async def wait_serving(target: str, seconds: float = 20) -> None:
    """Return once the gRPC health check at `target` says SERVING; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as ch:
        while time.monotonic() < deadline:
            try:
                reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.2)
    raise TimeoutError(f"{target} not serving")


MODEL = b"onnx-model-bytes" * 100_000  # 1.6 MB: several chunks


def signed(
    priv, version: int, modality: str = "hr", model: bytes = MODEL, validation_accuracy: float = 0.0
) -> manifest_pb2.ModelManifest:
    """A manifest for `model` signed with the trainer key `priv`."""
    m = manifest_pb2.ModelManifest(
        format_version=bundle.FORMAT_VERSION,
        modality=modality,
        version=version,
        taxonomy=common_pb2.Taxonomy(name="quadrants", labels=["happy", "angry", "sad", "calm"]),
        input=manifest_pb2.InputSpec(name="x", shape=[1, 8], dtype="float32"),
        output_name="probs",
        files=[bundle.file_digest("model.onnx", model, "model")],
        metrics=manifest_pb2.Metrics(accuracy=0.8, validation_accuracy=validation_accuracy),
    )
    return bundle.sign_manifest(m, priv)


def chunks(manifest, files: dict[str, bytes]):
    """The PushBundle stream of a manifest and its files, in chunks of 1 MiB."""
    yield registry_pb2.BundleChunk(manifest=manifest)
    for name, data in files.items():
        for off in range(0, len(data), 1 << 20):
            yield registry_pb2.BundleChunk(
                file=registry_pb2.FileChunk(name=name, offset=off, data=data[off : off + (1 << 20)])
            )
