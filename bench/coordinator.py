"""Coordinator load benchmark: simulated devices in separate processes, loopback only, JSON out.

Phases: (1) real-time load (every device sends hr 1/s, eeg 2/s, speech 2/s, image 5/s) for --seconds
against `mmer coordinator`, with a subscriber counting fused emotions (lost frames, windows fused twice,
coordinator-added latency); (2) peak: the same devices unpaced for --peak-seconds against the coordinator
and (3) against a bare grpc.aio sink that only acks, measured in the same run; ratio = (2) / (3).

    python bench/coordinator.py --devices 1000 --seconds 60 --store redis --json FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

import grpc  # noqa: E402

from mmer.v1 import fusion_pb2, fusion_pb2_grpc, ingest_pb2, ingest_pb2_grpc  # noqa: E402

RATES = {"hr": 1.0, "eeg": 2.0, "speech": 2.0, "image": 5.0}
LABELS = ["happy", "angry", "sad", "calm"]
DEVICES_PER_STREAM = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_frame(device: str, modality: str, seq: int, now: int) -> ingest_pb2.ScoreFrame:
    return ingest_pb2.ScoreFrame(
        device_id=device, subject_id=device, modality=modality, seq=seq, window_start_ns=now - 10**9,
        window_end_ns=now, inference_start_ns=now, inference_end_ns=now, send_ns=now, model_id=modality,
        model_version=1, taxonomy="quadrants", labels=LABELS, probs=[0.55, 0.15, 0.15, 0.15], quality=1.0,
    )  # fmt: skip


async def _stream(target: str, devices: list[str], until: float, paced: bool, out: dict) -> None:
    async with grpc.aio.insecure_channel(target) as ch:
        call = ingest_pb2_grpc.IngestStub(ch).StreamScores()
        seqs = Counter()
        due = {
            (d, m): time.monotonic() + (hash((d, m)) % 1000) / 1000 / RATES[m] for d in devices for m in RATES
        }
        acked: dict[tuple[str, str], int] = {}
        inflight = asyncio.Semaphore(4)

        async def reader() -> None:
            async for ack in call:
                for a in ack.acks:
                    acked[(a.device_id, a.modality)] = max(
                        acked.get((a.device_id, a.modality), 0), a.acked_seq
                    )
                inflight.release()

        task = asyncio.create_task(reader())
        batch_id = 0
        while time.monotonic() < until:
            now_m = time.monotonic()
            frames = []
            now = time.time_ns()
            for key, t in due.items():
                if not paced or t <= now_m:
                    seqs[key] += 1
                    frames.append(make_frame(key[0], key[1], seqs[key], now))
                    due[key] = t + 1 / RATES[key[1]]
            if frames:
                await inflight.acquire()
                batch_id += 1
                await call.write(ingest_pb2.ScoreBatch(frames=frames, batch_id=batch_id))
            if paced:
                await asyncio.sleep(0.1)
        await call.done_writing()
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            task.cancel()
        out["sent"] = out.get("sent", 0) + sum(seqs.values())
        out["acked"] = out.get("acked", 0) + sum(min(acked.get(k, 0), n) for k, n in seqs.items())


def generator(target: str, devices: list[str], seconds: float, paced: bool, queue) -> None:
    """One load-generator process: several streams of DEVICES_PER_STREAM devices each."""
    out: dict = {}

    async def main() -> None:
        until = time.monotonic() + seconds
        groups = [devices[i : i + DEVICES_PER_STREAM] for i in range(0, len(devices), DEVICES_PER_STREAM)]
        await asyncio.gather(*(_stream(target, g, until, paced, out) for g in groups))

    asyncio.run(main())
    queue.put(out)


def run_load(target: str, devices: int, seconds: float, paced: bool, procs: int, prefix: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    ids = [f"{prefix}-{i:05d}" for i in range(devices)]
    workers = [
        ctx.Process(target=generator, args=(target, ids[i::procs], seconds, paced, queue))
        for i in range(procs)
    ]
    start = time.monotonic()
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.monotonic() - start
    sent = sum(r["sent"] for r in results)
    acked = sum(r["acked"] for r in results)
    return {"sent": sent, "acked": acked, "fps": acked / max(min(elapsed, seconds), 1e-9)}


def sink_process(port: int, ready) -> None:
    """A bare grpc.aio streaming sink: parse each batch and ack it, nothing else."""

    class Sink(ingest_pb2_grpc.IngestServicer):
        async def StreamScores(self, request_iterator, context):
            async for b in request_iterator:
                top: dict[tuple[str, str], int] = {}
                for f in b.frames:
                    top[(f.device_id, f.modality)] = max(top.get((f.device_id, f.modality), 0), f.seq)
                yield ingest_pb2.Ack(
                    batch_id=b.batch_id,
                    acks=[
                        ingest_pb2.ModalityAck(device_id=d, modality=m, acked_seq=s)
                        for (d, m), s in top.items()
                    ],
                )

    async def main() -> None:
        server = grpc.aio.server()
        ingest_pb2_grpc.add_IngestServicer_to_server(Sink(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    asyncio.run(main())


async def subscribe(target: str, stop: asyncio.Event, out: dict) -> None:
    windows: Counter = Counter()
    added: list[float] = []
    hops: dict[str, list[float]] = {
        h: [] for h in ("queue", "inference", "network", "fuse", "publish", "subscriber")
    }
    contributed: set = set()
    async with grpc.aio.insecure_channel(target) as ch:
        call = fusion_pb2_grpc.FusionStub(ch).Subscribe(fusion_pb2.SubscribeRequest())
        reader = asyncio.ensure_future(call.read())
        while not stop.is_set():
            done, _ = await asyncio.wait({reader}, timeout=0.5)
            if not done:
                continue
            e = reader.result()
            if e is grpc.aio.EOF:
                break
            now = time.time_ns()
            windows[(e.subject_id, e.window_end_ns)] += 1
            added.append(e.latency.fuse_ms + e.latency.publish_ms)
            for h in ("queue", "inference", "network", "fuse", "publish"):
                hops[h].append(getattr(e.latency, f"{h}_ms"))
            hops["subscriber"].append((now - e.published_ns) / 1e6)
            contributed.update((c.device_id, c.modality, c.seq) for c in e.contributions)
            reader = asyncio.ensure_future(call.read())
        reader.cancel()
        call.cancel()
    out.update(windows=windows, added=added, hops=hops, contributed=len(contributed))


async def wait_serving(target: str, seconds: float = 30) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as ch:
        while True:
            try:
                await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
                return
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(xs, p)) if xs else float("nan")


async def bench(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="mmer-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        store = "memory"
        if args.store == "redis":
            rport = free_port()
            procs.append(subprocess.Popen(
                [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                 "--dir", str(tmp), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))  # fmt: skip
            store = f"redis://127.0.0.1:{rport}/0"
            time.sleep(0.5)
        gport = free_port()
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'protos'}"}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "mmer_core.cli", "coordinator", "--listen", f"127.0.0.1:{gport}", "--store", store,
             "--http", f"127.0.0.1:{free_port()}"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL))  # fmt: skip
        target = f"127.0.0.1:{gport}"
        await wait_serving(target)
        stop, sub_out = asyncio.Event(), {}
        sub = asyncio.create_task(subscribe(target, stop, sub_out))
        await asyncio.sleep(0.5)
        real = await asyncio.to_thread(run_load, target, args.devices, args.seconds, True, args.procs, "rt")
        await asyncio.sleep(3)
        stop.set()
        await sub
        peak = await asyncio.to_thread(
            run_load, target, args.devices, args.peak_seconds, False, args.procs, "pk"
        )
        ctx = multiprocessing.get_context("spawn")
        ready, sport = ctx.Event(), free_port()
        sink = ctx.Process(target=sink_process, args=(sport, ready))
        sink.start()
        ready.wait(10)
        sink_run = await asyncio.to_thread(
            run_load, f"127.0.0.1:{sport}", args.devices, args.peak_seconds, False, args.procs, "sk"
        )
        sink.terminate()
        sink.join()
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    windows = sub_out["windows"]
    result = {
        "devices": args.devices, "seconds": args.seconds, "store": args.store,
        "frames_sent": real["sent"], "frames_acked": real["acked"], "frames_fused": sub_out["contributed"],
        "fused_emotions": sum(windows.values()), "lost": real["sent"] - real["acked"],
        "duplicates": sum(n - 1 for n in windows.values() if n > 1),
        "realtime_fps": real["fps"], "ingest_fps": peak["fps"], "sink_fps": sink_run["fps"],
        "ratio": peak["fps"] / sink_run["fps"] if sink_run["fps"] else float("nan"),
        "added_latency_ms_p50": pct(sub_out["added"], 50), "added_latency_ms_p99": pct(sub_out["added"], 99),
        "latency_ms": {h: {"p50": pct(v, 50), "p99": pct(v, 99)} for h, v in sub_out["hops"].items()},
    }  # fmt: skip
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--peak-seconds", type=float, default=10)
    parser.add_argument("--store", choices=("memory", "redis"), default="redis")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
