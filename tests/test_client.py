"""mmer_client and `mmer subscribe` against real coordinators on 127.0.0.1.

The restart test kills a coordinator process (SIGKILL) between two reads of a running `mmer subscribe` and
starts another on the same port and Redis: what the subscriber printed must be exactly the fused stream the
store holds, in order, nothing missing and nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from coordinator.assembly import open_coordinator
from coordinator.auth import hash_token, load_tokens
from coordinator.memory_store import MemoryStore
from coordinator.rpc_errors import ErrorStatusInterceptor
from coordinator.server import TlsFiles, build_server
from coordinator.service import FusionService
from mmer.v1 import fusion_pb2, fusion_pb2_grpc, ingest_pb2_grpc
from mmer_client import FROM_OLDEST, Backoff, FusedStream, SubscribeError
from mmer_core.config import CoordinatorConfig
from testkit.coordinator_helpers import ROOT, batch, frame, spawn_coordinator, wait_ready
from testkit.localhost import free_port

TOKENS = {"admin": "tok-admin", "one": "tok-viewer-subj-1"}


def write_tokens(directory: Path) -> Path:
    path = directory / "tokens"
    path.write_text(
        f"{hash_token(TOKENS['admin'])} admin root\n{hash_token(TOKENS['one'])} subscriber viewer subj-1\n"
    )
    for name, token in TOKENS.items():
        (directory / f"{name}.token").write_text(token + "\n")
    return path


def windows(first: int, last: int, base_ns: int) -> list:
    """hr frames of subj-1 and subj-2, one per 1-s fusion window: each closes the window before it."""
    return [
        frame(i, device=device, subject=subject, end_ns=base_ns + i * 1_000_000_000 - 1)
        for i in range(first, last + 1)
        for device, subject in (("dev-1", "subj-1"), ("dev-2", "subj-2"))
    ]


async def feed(address: str, frames: list) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        call = ingest_pb2_grpc.IngestStub(channel).StreamScores(
            metadata=(("authorization", f"Bearer {TOKENS['admin']}"),)
        )
        await call.write(batch(frames))
        ack = await call.read()
        assert ack.duplicates == 0 and len(ack.acks) == 2, ack
        await call.done_writing()


async def stored_positions(address: str, subject: str, idle_s: float = 3.0) -> list[str]:
    """Every position the store holds for `subject`, read until nothing new comes for `idle_s`."""
    out = []
    async with grpc.aio.insecure_channel(address) as channel:
        call = fusion_pb2_grpc.FusionStub(channel).Subscribe(
            fusion_pb2.SubscribeRequest(subject_ids=[subject], after_position="0"),
            metadata=(("authorization", f"Bearer {TOKENS['admin']}"),),
        )
        with contextlib.suppress(TimeoutError):
            while True:
                out.append((await asyncio.wait_for(call.read(), idle_s)).position)
        call.cancel()
    return out


def mmer(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmer_cli", *args]


async def read_lines(proc: asyncio.subprocess.Process, n: int, timeout_s: float = 30.0) -> list[dict]:
    async with asyncio.timeout(timeout_s):
        return [json.loads(await proc.stdout.readline()) for _ in range(n)]


@pytest.mark.redis
@pytest.mark.slow
async def test_subscribe_survives_a_coordinator_restart_without_gap_or_repeat(
    redis_url: str, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path)
    grpc_port, http_port = free_port(), free_port()
    address = f"127.0.0.1:{grpc_port}"
    args = ["--store", redis_url, "--auth", str(tokens)]
    coordinator = spawn_coordinator(grpc_port, http_port, args)
    subscriber = None
    try:
        await wait_ready(coordinator, http_port)
        subscriber = await asyncio.create_subprocess_exec(
            *mmer(
                "subscribe",
                "--coordinator",
                address,
                "--token-file",
                str(tmp_path / "one.token"),
                "--subject",
                "subj-1",
                "--max-backoff",
                "1",
            ),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await asyncio.sleep(2.0)  # connected: it pins the end of the (empty) stream first
        base = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000
        await feed(address, windows(1, 6, base))
        first = await read_lines(subscriber, 3)

        coordinator.kill()  # no goodbye: streams break mid-flight
        coordinator.wait(10)
        http_port = free_port()
        coordinator = spawn_coordinator(grpc_port, http_port, args)
        await wait_ready(coordinator, http_port)
        await feed(address, windows(7, 12, base))  # likely before the subscriber is back: replayed to it

        truth = await stored_positions(address, "subj-1")
        assert len(truth) >= 10, truth
        second = []
        async with asyncio.timeout(30):
            while not second or second[-1]["position"] != truth[-1]:
                second += await read_lines(subscriber, 1)
    finally:
        if subscriber is not None and subscriber.returncode is None:
            subscriber.send_signal(signal.SIGTERM)
        coordinator.send_signal(signal.SIGTERM)
        coordinator.wait(15)
    assert await asyncio.wait_for(subscriber.wait(), 10) == 0
    printed = [line["position"] for line in first + second]
    assert printed == truth, "every stored emotion once, in order"
    assert {line["subject"] for line in first + second} == {"subj-1"}
    stderr = (await subscriber.stderr.read()).decode()
    assert "resuming after position" in stderr and TOKENS["one"] not in stderr
    line = first[0]
    assert set(line) == {
        "subject",
        "window_start_ns",
        "window_end_ns",
        "label",
        "probabilities",
        "modalities",
        "position",
    }
    assert line["window_end_ns"] - line["window_start_ns"] == 1_000_000_000
    assert abs(sum(line["probabilities"].values()) - 1) < 1e-5 and line["label"] in line["probabilities"]
    assert [m["modality"] for m in line["modalities"]] == ["hr"] and line["modalities"][0]["weight"] == 1.0


@pytest.mark.parametrize(
    ("token", "extra", "said"),
    [
        ("nope", [], "UNAUTHENTICATED"),
        (TOKENS["one"], ["--subject", "subj-2"], "PERMISSION_DENIED"),
        (TOKENS["one"], [], "PERMISSION_DENIED"),  # a scoped token must name its subjects
        (TOKENS["one"], ["--subject", "subj-1", "--from", "yesterday"], "INVALID_ARGUMENT"),
    ],
)
async def test_subscribe_refusals_end_with_a_clear_message(tmp_path: Path, token, extra, said) -> None:
    """What no retry can fix ends the command (exit 2) naming the cause, instead of retrying forever."""
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    server, port, _ = await build_server(app, "127.0.0.1:0", tokens=load_tokens(write_tokens(tmp_path)))
    (tmp_path / "given.token").write_text(token)
    try:
        proc = await asyncio.create_subprocess_exec(
            *mmer(
                "subscribe",
                "--coordinator",
                f"127.0.0.1:{port}",
                "--token-file",
                str(tmp_path / "given.token"),
                *extra,
            ),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await server.stop(None)
        await app.close()
    assert proc.returncode == 2 and out == b""
    assert said in err.decode() and (not token or token not in err.decode())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--token-file", "/nonexistent/token"], "/nonexistent/token"),
        (["--token-file", "/dev/null"], "holds no token"),
        (["--token-file", str(ROOT / "pyproject.toml"), "--max-backoff", "0"], "--max-backoff"),
    ],
)
def test_bad_options_are_named_before_connecting(args: list[str], said: str) -> None:
    done = subprocess.run(
        mmer("subscribe", "--coordinator", "127.0.0.1:1", *args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and said in done.stderr and done.stdout == ""


async def test_the_client_over_tls_starts_now_or_from_the_oldest(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    subprocess.run(
        ["bash", str(ROOT / "deploy/certs/make-certs.sh"), str(certs), "127.0.0.1"],
        check=True,
        capture_output=True,
    )
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    server, port, _ = await build_server(
        app,
        "127.0.0.1:0",
        TlsFiles(certs / "server.crt", certs / "server.key"),
        tokens=load_tokens(write_tokens(tmp_path)),
    )
    target, ca = f"127.0.0.1:{port}", certs / "ca.crt"
    base = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000
    try:
        await app.ingest(batch(windows(1, 3, base)), time.time_ns())
        async with asyncio.timeout(5):
            while app.counters["fused_emotions"] < 6:  # windows long past their grace: fused at once
                await asyncio.sleep(0.05)
        now = FusedStream(target, TOKENS["one"], subjects=["subj-1"], tls_ca=ca)
        reader = aiter(now)
        first = asyncio.ensure_future(anext(reader))
        await asyncio.sleep(0.5)  # connected, and pinned past what was fused before it started
        await app.ingest(batch(windows(4, 5, base)), time.time_ns())
        got = [await asyncio.wait_for(first, 5), await asyncio.wait_for(anext(reader), 5)]
        await reader.aclose()
        assert [e.window_end_ns for e in got] == [base + i * 1_000_000_000 for i in (4, 5)], "the 1-s grid"
        assert now.position == got[-1].position and {e.subject for e in got} == {"subj-1"}

        oldest = aiter(FusedStream(target, TOKENS["admin"], start=FROM_OLDEST, tls_ca=ca))
        everything = [await asyncio.wait_for(anext(oldest), 5) for _ in range(10)]
        await oldest.aclose()
        assert sorted(e.subject for e in everything) == ["subj-1"] * 5 + ["subj-2"] * 5

        with pytest.raises(SubscribeError) as refused:
            await anext(aiter(FusedStream(target, TOKENS["one"], subjects=["subj-2"], tls_ca=ca)))
        assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.stop(None)
        await app.close()


def test_backoff_is_full_jitter_capped() -> None:
    backoff = Backoff(base_s=0.5, cap_s=4.0, rng=random.Random(3))
    for attempt in range(12):
        bound = min(4.0, 0.5 * 2**attempt)
        waits = [backoff.delay(attempt) for _ in range(2000)]
        assert 0 <= min(waits) < 0.05 * bound and 0.95 * bound < max(waits) <= bound, attempt
        assert abs(sum(waits) / len(waits) - bound / 2) < 0.05 * bound, "uniform over [0, bound]"
    assert backoff.delay(10_000) <= 4.0


class CoordinatorWithoutBatches(fusion_pb2_grpc.FusionServicer):
    """A coordinator from before Fusion.SubscribeBatches: the real Subscribe and Latest, nothing else (the
    generated servicer answers SubscribeBatches with UNIMPLEMENTED)."""

    def __init__(self, service: FusionService) -> None:
        self.Subscribe = service.Subscribe
        self.Latest = service.Latest


@pytest.mark.parametrize("batched", [True, False])
async def test_the_client_reads_batches_and_falls_back_to_one_by_one(batched: bool) -> None:
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    server = grpc.aio.server(interceptors=[ErrorStatusInterceptor()])  # sends what the service serialized
    service = FusionService(app.hub, app.store, app.config.subscriber_buffer, None)
    fusion_pb2_grpc.add_FusionServicer_to_server(
        service if batched else CoordinatorWithoutBatches(service), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    base = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000
    try:
        await app.ingest(batch(windows(1, 4, base)), time.time_ns())
        async with asyncio.timeout(5):
            while app.counters["fused_emotions"] < 8:
                await asyncio.sleep(0.05)
        stream = FusedStream(f"127.0.0.1:{port}", start=FROM_OLDEST)
        batches = aiter(stream.batches())
        got = [await asyncio.wait_for(anext(batches), 5)]
        while sum(map(len, got)) < 8:
            got.append(await asyncio.wait_for(anext(batches), 5))
        await batches.aclose()
        assert stream.batched is batched
        assert [len(b) for b in got] == ([8] if batched else [1] * 8), "as the coordinator sent them"
        emotions = [e for b in got for e in b]
        assert sorted((e.subject, e.window_end_ns) for e in emotions) == [
            (s, base + i * 1_000_000_000) for s in ("subj-1", "subj-2") for i in range(1, 5)
        ]
        assert stream.position == emotions[-1].position

        one_by_one = aiter(FusedStream(f"127.0.0.1:{port}", start=emotions[3].position))
        rest = [await asyncio.wait_for(anext(one_by_one), 5) for _ in range(4)]
        await one_by_one.aclose()
        assert [e.position for e in rest] == [e.position for e in emotions[4:]], "resumed after a position"
    finally:
        await server.stop(None)
        await app.close()
