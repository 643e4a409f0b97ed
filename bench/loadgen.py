"""Shared load generation for the coordinator benches: simulated devices in separate processes.

Each generator process runs several gRPC streams of DEVICES_PER_STREAM devices;
every device sends hr 1/s, eeg 2/s, speech 2/s and image 5/s (paced: each frame
when its window ends, batched as the edge node batches) or as fast as acks allow
(unpaced). Also a bare grpc.aio sink (the yardstick for ingest
rate), a fused-stream subscriber that counts windows and latencies, and helpers
to start redis-server and coordinators and to sample processes' RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import multiprocessing
import os
import queue as queue_mod
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import grpc
import numpy as np

from mmer.v1 import fusion_pb2, fusion_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from mmer_client import FusedStream
from testkit.localhost import free_port, start_redis, start_redis_cluster

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["free_port", "start_redis", "start_redis_cluster"]  # the benches take them from here with the rest

RATES = {"hr": 1.0, "eeg": 2.0, "speech": 2.0, "image": 5.0}
LABELS = ["happy", "angry", "sad", "calm"]
DEVICES_PER_STREAM = 50
PEAK_IN_FLIGHT = 4  # unpaced batches in flight per stream
HOPS = ("queue", "inference", "network", "wait", "fuse", "publish", "subscriber")


def report(result: dict, started: float, json_path: Path | None) -> int:
    """Add the bench's wall time, print the figures, and write them to json_path when given."""
    result["bench_seconds"] = time.monotonic() - started
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")
    return 0


def pct(xs, p: float) -> float:
    return float(np.percentile(xs, p)) if len(xs) else float("nan")


def missing_windows(windows, window_ns: int = 1_000_000_000) -> int:
    """Windows between a subject's first and last fused window that were never fused."""
    ends = defaultdict(list)
    for subject, end in windows:
        ends[subject].append(end)
    return sum((max(e) - min(e)) // window_ns + 1 - len(set(e)) for e in ends.values())


def make_frame(device: str, modality: str, seq: int, end: int, now: int) -> ingest_pb2.ScoreFrame:
    """A frame whose window ended at `end` (on the modality's regular schedule, as a sample clock gives)
    and that is inferred and sent at `now` (the generator's next tick)."""
    return ingest_pb2.ScoreFrame(
        device_id=device,
        subject_id=device,
        modality=modality,
        seq=seq,
        window_start_ns=end - 10**9,
        window_end_ns=end,
        inference_start_ns=now,
        inference_end_ns=now,
        send_ns=now,
        model_id=modality,
        model_version=1,
        taxonomy="quadrants",
        labels=LABELS,
        probs=[0.55, 0.15, 0.15, 0.15],
        quality=1.0,
    )


async def _stream(
    target: str,
    devices: list[str],
    until: float,
    paced: bool,
    out: dict,
    rates: dict[str, float] = RATES,
    virtual_from_ns: int = 0,
) -> None:
    """One device group's bidi stream; counts sent frames and the highest acked seq per key.

    Paced, it batches as the edge node does: a frame goes out when its window ends if no batch is in
    flight, and frames that come due meanwhile go together as soon as the ack returns. Unpaced, each batch
    takes as many frames as the stream has (device, modality) pairs in due order, so the modality mix is the
    real-time one, time-compressed, with up to PEAK_IN_FLIGHT batches in flight. With `virtual_from_ns`,
    window ends follow a schedule of their own from that time on rather than the wall clock, one second
    apart from a (device, modality)'s frame to its next, so with one modality every frame closes a fusion
    window: a fused emotion per frame, as fast as frames arrive (unpaced) or at the rate asked (paced)."""
    # Its own connection, as a gateway of devices has: grpc would otherwise put every stream of this process
    # on one TCP connection, and coordinator workers sharing a port (SO_REUSEPORT) get connections, not streams.
    async with grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        call = ingest_pb2_grpc.IngestStub(ch).StreamScores()
        seqs: Counter = Counter()
        start = time.monotonic()
        due = [(start + (hash((d, m)) % 1000) / 1000 / rates[m], d, m) for d in devices for m in rates]
        heapq.heapify(due)
        acked: dict[tuple[str, str], int] = {}
        inflight = asyncio.Semaphore(1 if paced else PEAK_IN_FLIGHT)

        async def reader() -> None:
            async for ack in call:
                for a in ack.acks:
                    key = (a.device_id, a.modality)
                    if a.acked_seq > acked.get(key, 0):
                        acked[key] = a.acked_seq
                inflight.release()

        task = asyncio.create_task(reader())
        batch_id = 0
        while time.monotonic() < until:
            if paced:
                await asyncio.sleep(max(due[0][0] - time.monotonic(), 0))
            await inflight.acquire()
            now_m, now = time.monotonic(), time.time_ns()
            frames = []
            while (not paced or due[0][0] <= now_m) and len(frames) < len(due):
                t, device, modality = due[0]
                seqs[(device, modality)] += 1
                if virtual_from_ns:
                    end = virtual_from_ns + int((t - start) * rates[modality] * 1e9)
                else:
                    end = now - int((now_m - t) * 1e9) if paced else now
                frames.append(make_frame(device, modality, seqs[(device, modality)], end, now))
                heapq.heapreplace(due, (t + 1 / rates[modality], device, modality))
            batch_id += 1
            await call.write(ingest_pb2.ScoreBatch(frames=frames, batch_id=batch_id))
        await call.done_writing()
        try:
            async with asyncio.timeout(15):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
        out["sent"] = out.get("sent", 0) + sum(seqs.values())
        out["acked"] = out.get("acked", 0) + sum(min(acked.get(k, 0), n) for k, n in seqs.items())
        out["batches"] = out.get("batches", 0) + batch_id


def generator(
    target: str,
    devices: list[str],
    seconds: float,
    paced: bool,
    queue,
    rates: dict[str, float] = RATES,
    virtual_from_ns: int = 0,
) -> None:
    """One load-generator process: several streams of DEVICES_PER_STREAM devices each."""
    out: dict = {"pid": os.getpid()}

    async def main() -> None:
        until = time.monotonic() + seconds
        groups = [devices[i : i + DEVICES_PER_STREAM] for i in range(0, len(devices), DEVICES_PER_STREAM)]
        await asyncio.gather(*(_stream(target, g, until, paced, out, rates, virtual_from_ns) for g in groups))

    asyncio.run(main())
    queue.put(out)


class Load:
    """Generator processes started in the background; `result()` waits for them."""

    def __init__(
        self,
        target: str,
        devices: int,
        seconds: float,
        paced: bool,
        procs: int,
        prefix: str,
        rates: dict[str, float] = RATES,
        virtual_from_ns: int = 0,
    ):
        ctx = multiprocessing.get_context("spawn")
        self.queue = ctx.Queue()
        self.seconds = seconds
        ids = [f"{prefix}-{i:05d}" for i in range(devices)]
        self.workers = [
            ctx.Process(
                target=generator,
                args=(target, ids[i::procs], seconds, paced, self.queue, rates, virtual_from_ns),
            )
            for i in range(procs)
        ]
        self.started = time.monotonic()
        for w in self.workers:
            w.start()

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid]

    def result(self) -> dict:
        results = []
        deadline = self.started + self.seconds + 60
        while len(results) < len(self.workers):
            try:
                results.append(self.queue.get(timeout=1))
            except queue_mod.Empty:
                if time.monotonic() > deadline or any(w.exitcode not in (None, 0) for w in self.workers):
                    for w in self.workers:
                        w.kill()
                    raise RuntimeError("a load generator died or hung") from None
        for w in self.workers:
            w.join()
        elapsed = time.monotonic() - self.started
        sent = sum(r["sent"] for r in results)
        acked = sum(r["acked"] for r in results)
        batches = sum(r["batches"] for r in results)
        return {
            "sent": sent,
            "acked": acked,
            "fps": acked / max(min(elapsed, self.seconds), 1e-9),
            "frames_per_batch": sent / max(batches, 1),
        }


def run_load(target: str, devices: int, seconds: float, paced: bool, procs: int, prefix: str) -> dict:
    """Run generator processes against `target` and wait for their counts."""
    return Load(target, devices, seconds, paced, procs, prefix).result()


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


class Sink:
    """The bare sink in its own process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        ready, self.port = ctx.Event(), free_port()
        self.process = ctx.Process(target=sink_process, args=(self.port, ready))
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("sink did not start")
        self.target = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


async def subscribe(target: str, stop, out: dict) -> None:
    """Count fused emotions per (subject, window), the frames they used, and latencies per hop.

    `stop` is a multiprocessing Event. A subscriber cut off for falling behind resumes from its last
    position, as a real client would (counted in `resumes`)."""
    windows: Counter = Counter()
    added: list[float] = []
    published: list[int] = []  # each emotion's publish time, for steady()
    hops: dict[str, list[float]] = {h: [] for h in HOPS}
    contributed: set = set()
    resumes, last = 0, ""
    async with grpc.aio.insecure_channel(target) as ch:
        stub = fusion_pb2_grpc.FusionStub(ch)

        async def read() -> None:
            nonlocal resumes, last
            while True:
                call = stub.SubscribeBatches(fusion_pb2.SubscribeRequest(after_position=last))
                try:
                    async for message in call:
                        now = time.time_ns()
                        for e in message.emotions:
                            last = e.position
                            windows[(e.subject_id, e.window_end_ns)] += 1
                            lat = e.latency
                            added.append(lat.fuse_ms + lat.publish_ms)
                            published.append(e.published_ns)
                            for h in HOPS[:-1]:
                                hops[h].append(getattr(lat, f"{h}_ms"))
                            hops["subscriber"].append((now - e.published_ns) / 1e6)
                            contributed.update((c.device_id, c.modality, c.seq) for c in e.contributions)
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        raise
                    resumes += 1

        reader = asyncio.create_task(read())
        while not stop.is_set() and not reader.done():
            await asyncio.sleep(0.2)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    out.update(
        windows=windows,
        added=added,
        published=published,
        hops=hops,
        contributed=len(contributed),
        resumes=resumes,
    )


def steady(sub: dict, since_ns: int) -> tuple[list[float], dict[str, list[float]]]:
    """Added latencies and hop latencies of the emotions published from since_ns on (past the warm-up, in
    which each subject's first window waits for its grace: nothing tells yet which modalities it has)."""
    keep = [i for i, t in enumerate(sub["published"]) if t >= since_ns]
    return [sub["added"][i] for i in keep], {h: [v[i] for i in keep] for h, v in sub["hops"].items()}


def subscriber_process(target: str, stop, queue) -> None:
    out: dict = {}
    asyncio.run(subscribe(target, stop, out))
    queue.put(out)


class Subscriber:
    """The fused-stream subscriber in its own process, so that it keeps up."""

    process_main = staticmethod(subscriber_process)

    def __init__(self, target: str) -> None:
        self.target = target
        ctx = multiprocessing.get_context("spawn")
        self.stop_event, self.queue = ctx.Event(), ctx.Queue()
        self.process = ctx.Process(target=self.process_main, args=(target, self.stop_event, self.queue))
        self.process.start()

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def result(self) -> dict:
        self.stop_event.set()
        out = self.queue.get(timeout=120)
        self.process.join(10)
        return out


async def read_with_client(target: str, stop, out: dict) -> None:
    """One subscriber of all subjects through mmer_client (SubscribeBatches): each emotion's publish ->
    receive latency and when it came, until `stop` (a multiprocessing Event) is set."""
    received: list[int] = []
    latency_ms: list[float] = []
    subjects: list[str] = []
    stream = FusedStream(target)

    async def read() -> None:
        async for emotions in stream.batches():
            now = time.time_ns()
            for e in emotions:
                received.append(now)
                latency_ms.append((now - e.message.published_ns) / 1e6)
                subjects.append(e.subject)

    reader = asyncio.create_task(read())
    while not stop.is_set() and not reader.done():
        await asyncio.sleep(0.1)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    out.update(received=received, latency_ms=latency_ms, subjects=subjects)


def client_subscriber_process(target: str, stop, queue) -> None:
    out: dict = {}
    asyncio.run(read_with_client(target, stop, out))
    queue.put(out)


class ClientSubscriber(Subscriber):
    """read_with_client in its own process."""

    process_main = staticmethod(client_subscriber_process)


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


def start_coordinator(
    store: str, workers: int = 1, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`mmer coordinator` from this checkout on a free port; returns the process and its target."""
    port = free_port()
    env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmer_cli",
            "coordinator",
            "--listen",
            f"127.0.0.1:{port}",
            "--store",
            store,
            "--http",
            f"127.0.0.1:{free_port()}",
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"127.0.0.1:{port}"


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each (newest first), then kill what did not stop within 10 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (from /proc; 0 for those gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
