"""A real mmer deployment on 127.0.0.1 for fault scenarios, with independent witnesses of what happened.

Pieces: redis-server (AOF, fsync on every write) holding the coordinator's
state; `mmer coordinator --store redis://...` as a process; a FaultProxy that
every edge connects through; edges that are either in-process agents (the real
Agent, Spool and Streamer in a thread of this process) or real `mmer node`
processes. Witnesses that do not trust the coordinator's own counters: a
FrameCollector tailing the shard frame streams in Redis (what was stored), the
fused Redis Stream itself, and gRPC subscribers that resume after every break.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mmer.v1 import fusion_pb2, fusion_pb2_grpc
from testkit.fault_proxy import ProxyThread
from testkit.localhost import free_port, redis_server

ROOT = Path(__file__).resolve().parents[1]

SHARD_STREAMS = (
    16  # coordinator.sharing.SHARDS; read from Redis keys, not imported (no coordinator import here)
)
FUSED_STREAM = "mmer:{fused}:stream"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def wait_until(predicate, timeout_s: float, what: str, step_s: float = 0.05) -> float:
    """Poll until predicate() is true; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(step_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")


def grpc_serving(target: str, timeout_s: float = 0.5) -> bool:
    try:
        with grpc.insecure_channel(target) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


class RedisProcess:
    """redis-server with AOF fsynced on every write, restartable on the same port and directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        wait_until(lambda: _ping(client), 20, f"redis-server on port {self.port}")
        client.close()

    def kill(self) -> None:
        """SIGKILL: only what the AOF holds survives."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class CoordinatorProcess:
    """`mmer coordinator` on a fixed port with the Redis store; SIGKILL and restart keep the port."""

    def __init__(self, redis_url: str, pubkey: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.http_port = free_port()
        self.redis_url = redis_url
        self.pubkey = pubkey
        self.log = log
        self.env = {**ENV, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> float:
        """Launch and wait until gRPC health says SERVING; returns the seconds that took."""
        cmd = [
            sys.executable,
            "-m",
            "mmer_cli",
            "coordinator",
            "--listen",
            self.target,
            "--http",
            f"127.0.0.1:{self.http_port}",
            "--store",
            self.redis_url,
            "--trainer-pubkey",
            str(self.pubkey),
        ]
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log, stderr=log)
        wait_until(lambda: self._alive() and grpc_serving(self.target), timeout_s, "coordinator serving", 0.1)
        return time.monotonic() - started

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"coordinator exited with {self.proc.returncode}; see {self.log}")
        return True

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@dataclass
class StoredFrame:
    model_version: int
    window_end_ns: int
    receive_ns: int


class FrameCollector:
    """Tails every shard frame stream in Redis: the frames the coordinator stored, as Redis has them."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=2)
        self.frames: dict[tuple[str, str, int], StoredFrame] = {}
        self.copies: dict[tuple[str, str, int], int] = defaultdict(int)
        self._cursor = {f"mmer:{{s{k}}}:frames": "0-0" for k in range(SHARD_STREAMS)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-collector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from coordinator.redis_store import stream_entry_frames

        while not self._stop.is_set():
            try:
                replies = self.client.xread(self._cursor, count=1000, block=200)
            except redis.RedisError:  # redis restarting: keep the cursors, try again
                time.sleep(0.1)
                continue
            with self._lock:
                for stream, entries in replies or []:
                    for entry_id, fields in entries:  # one entry: new frames stored by one pipeline
                        for f, receive_ns in stream_entry_frames(fields):
                            key = (f.device_id, f.modality, f.seq)
                            self.copies[key] += 1
                            self.frames[key] = StoredFrame(f.model_version, f.window_end_ns, receive_ns)
                        self._cursor[stream.decode()] = entry_id.decode()

    def snapshot(self, devices: set[str]) -> dict[tuple[str, str, int], StoredFrame]:
        with self._lock:
            return {k: v for k, v in self.frames.items() if k[0] in devices}

    def extra_copies(self, devices: set[str]) -> int:
        """Frames stored more than once (the dedup mark should make this 0)."""
        with self._lock:
            return sum(n - 1 for k, n in self.copies.items() if k[0] in devices)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()


def fused_stream(redis_url: str, subjects: set[str]) -> list[fusion_pb2.FusedEmotion]:
    """Every fused emotion of these subjects in the Redis Stream, oldest first, with positions."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    out, start = [], "-"
    try:
        while True:
            page = client.xrange(FUSED_STREAM, min=start, max="+", count=5000)
            for entry_id, fields in page:
                e = fusion_pb2.FusedEmotion.FromString(fields[b"e"])
                e.position = entry_id.decode()
                if e.subject_id in subjects:
                    out.append(e)
            if len(page) < 5000:
                return out
            start = f"({page[-1][0].decode()}"
    finally:
        client.close()


def stream_tail(redis_url: str) -> str:
    """Position of the newest fused emotion ("0" when the stream is empty)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        last = client.xrevrange(FUSED_STREAM, count=1)
    finally:
        client.close()
    return last[0][0].decode() if last else "0"


@dataclass
class Received:
    emotion: fusion_pb2.FusedEmotion
    at: float  # time.monotonic() on arrival


class Subscriber:
    """Fusion.Subscribe in a thread; on any break it resumes from the last position it got.

    `pause_s` makes it a slow reader (sleeps after each emotion) until `speed_up()`.
    """

    def __init__(
        self, target: str, subjects: list[str], after: str, pause_s: float = 0.0, window_bytes: int = 0
    ) -> None:
        self.target = target
        self.subjects = subjects
        self.position = after
        self.pause_s = pause_s
        self.window_bytes = window_bytes
        self.received: list[Received] = []
        self.breaks: dict[str, int] = defaultdict(int)
        self._call = None
        self._stop = threading.Event()
        self._fast = threading.Event()
        self._thread = threading.Thread(target=self._run, name="subscriber", daemon=True)
        self._thread.start()

    def speed_up(self) -> None:
        self.pause_s = 0.0
        self._fast.set()

    def _run(self) -> None:
        options = []
        if self.window_bytes:  # a tiny HTTP/2 window: a slow reader backs up into the server at once
            options = [("grpc.http2.lookahead_bytes", self.window_bytes), ("grpc.http2.bdp_probe", 0)]
        while not self._stop.is_set():
            channel = grpc.insecure_channel(self.target, options=options)
            try:
                stub = fusion_pb2_grpc.FusionStub(channel)
                req = fusion_pb2.SubscribeRequest(subject_ids=self.subjects, after_position=self.position)
                self._call = stub.Subscribe(req)
                for emotion in self._call:
                    self.received.append(Received(emotion, time.monotonic()))
                    self.position = emotion.position
                    if self.pause_s:
                        self._fast.wait(self.pause_s)
                    if self._stop.is_set():
                        break
            except grpc.RpcError as exc:
                if not self._stop.is_set():
                    self.breaks[exc.code().name] += 1
                    time.sleep(0.1)
            finally:
                channel.close()

    def caught_up(self, position: str) -> bool:
        return position_order(self.position) >= position_order(position)

    def close(self) -> None:
        self._stop.set()
        self._fast.set()
        if self._call is not None:
            self._call.cancel()
        self._thread.join(timeout=5)


def position_order(position: str) -> tuple[int, int]:
    head, _, tail = (position or "0").partition("-")
    return int(head), int(tail or 0)


@dataclass
class Bundles:
    """Signed tiny bundles (tests/edge_models.py) for every modality, and the trainer key pair."""

    models: Path
    keys: Path

    @property
    def pubkey(self) -> Path:
        return self.keys / "trainer.pub"


def make_bundles(directory: Path, modalities: list[str]) -> Bundles:
    from testkit.edge_models import make_bundle

    keys = directory / "keys"
    for m in modalities:
        make_bundle(directory / "models" / m, keys, m, 1)
    return Bundles(directory / "models", keys)


class InProcessEdge:
    """The real edge agent (source, queue, ORT, spool, streamer, model watch) in a thread of this process.

    Edges of one process share grpc's subchannel pool, hence one TCP connection through the proxy; a
    fault on it hits all of them at once, as it would hit several devices behind one gateway."""

    def __init__(
        self,
        device_id: str,
        subject: str,
        target: str,
        bundles: Bundles,
        workdir: Path,
        modalities: list[str],
        seed: int,
    ) -> None:
        from edge_node.agent import Agent
        from edge_node.clock import ClockEstimate
        from edge_node.node import load_slots
        from edge_node.sources import open_source
        from edge_node.spool import Spool
        from edge_node.streamer import Streamer, make_channel
        from mmer_core.bundle import load_public_key

        self.device_id = device_id
        self.subject = subject
        models = workdir / "models"  # its own copy: hot swaps install into it
        shutil.copytree(bundles.models, models)
        key = load_public_key(bundles.pubkey)
        providers = ["CPUExecutionProvider"]
        self.spool = Spool(workdir / "spool")
        self.streamer = Streamer(lambda: make_channel(target), self.spool, ClockEstimate(), device_id)
        slots = load_slots(models, modalities, key, providers, 1)
        self.agent = Agent(
            device_id, subject, slots, self.spool, self.streamer, self.streamer.clock, key, models, providers
        )
        self._windows = open_source(f"synthetic:{seed}", modalities, subject, False, None)
        self._target = target
        self._make_channel = make_channel
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"edge-{device_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        async def main() -> None:
            watch = self._make_channel(self._target)
            try:
                await self.agent.run(self._windows, watch, drain_s=20.0)
            finally:
                await watch.close(grace=None)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    @property
    def connected(self) -> bool:
        return self.streamer.connected.is_set()

    def versions(self) -> dict[str, int]:
        return {m: s.version for m, s in self.agent.slots.items()}

    def stop(self) -> dict:
        """End the source, drain the spool, stop; returns produced/acked/dropped figures."""
        self.agent.stopping.set()
        self._thread.join(timeout=40)
        if self._thread.is_alive() or self.error is not None:
            raise RuntimeError(f"edge {self.device_id} did not stop cleanly: {self.error!r}")
        c = self.agent.counters
        out = spool_figures(self.spool, list(self.agent.slots))
        out.update(
            windows_dropped=c.queue_dropped + c.unserved + c.rejected,
            reconnects=self.streamer.stats.reconnects,
        )
        self.spool.close()
        return out


def spool_figures(spool, modalities: list[str]) -> dict:
    """produced = seqs handed out per modality; edge_acked = seqs the edge saw acked; dropped by the spool."""
    produced = {m: spool.next_seq(m) - 1 for m in modalities}
    return {"produced": produced, "edge_acked": spool.acked(), "spool_dropped": spool.dropped}


class ProcessEdge:
    """A real `mmer node` process with its spool on disk; SIGKILL and restart resume from the spool."""

    def __init__(
        self,
        device_id: str,
        subject: str,
        target: str,
        bundles: Bundles,
        workdir: Path,
        modalities: list[str],
        seed: int,
    ) -> None:
        self.device_id = device_id
        self.subject = subject
        self.modalities = modalities
        self.workdir = workdir
        self.models = workdir / "models"
        shutil.copytree(bundles.models, self.models)
        self.health_port = free_port()
        self.cmd = [
            sys.executable,
            "-m",
            "mmer_cli",
            "node",
            "--coordinator",
            target,
            "--device-id",
            device_id,
            "--subject",
            subject,
            "--source",
            f"synthetic:{seed}",
            "--modalities",
            ",".join(modalities),
            "--models",
            str(self.models),
            "--trainer-pubkey",
            str(bundles.pubkey),
            "--spool",
            str(workdir / "spool"),
            "--health-port",
            str(self.health_port),
            "--stats-json",
            str(workdir / "stats.json"),
            "--seconds",
            "3600",
        ]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> float:
        """Launch and wait until its health port says SERVING (stream connected); returns the seconds."""
        started = time.monotonic()
        with open(self.workdir / "node.log", "ab") as log:
            self.proc = subprocess.Popen(self.cmd, env=ENV, cwd=ROOT, stdout=log, stderr=log)
        wait_until(lambda: grpc_serving(f"127.0.0.1:{self.health_port}"), timeout_s, "node serving", 0.1)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> dict:
        """SIGTERM (drains the spool), then the figures read back from its spool on disk."""
        from edge_node.spool import Spool

        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        spool = Spool(self.workdir / "spool")
        try:
            out = spool_figures(spool, self.modalities)
        finally:
            spool.close()
        stats = self.workdir / "stats.json"
        if stats.exists():
            import json

            s = json.loads(stats.read_text())
            out.update(windows_dropped=s["queue_dropped"] + s["windows_unserved"] + s["windows_rejected"])
        return out


@dataclass
class Cluster:
    """Redis + coordinator + proxy + frame collector, shared by the scenarios of one run."""

    workdir: Path
    modalities: list[str]
    redis: RedisProcess = field(init=False)
    coordinator: CoordinatorProcess = field(init=False)
    proxy: ProxyThread = field(init=False)
    collector: FrameCollector = field(init=False)
    bundles: Bundles = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bundles = make_bundles(self.workdir / "bundles", self.modalities)
        self.redis = RedisProcess(self.workdir / "redis")
        self.redis.start()
        # A small subscriber buffer lets a slow-subscriber scenario overflow in seconds; every push goes to
        # all devices (no canary fraction) so that a push must reach every node.
        env = {"MMER_COORDINATOR__SUBSCRIBER_BUFFER": "8", "MMER_COORDINATOR__ROLLOUT_FRACTION": "1.0"}
        self.coordinator = CoordinatorProcess(
            self.redis.url, self.bundles.pubkey, self.workdir / "coordinator.log", env
        )
        try:
            self.coordinator.start()
            self.proxy = ProxyThread("127.0.0.1", self.coordinator.port)
            self.collector = FrameCollector(self.redis.url)
        except BaseException:
            self.coordinator.kill()
            self.redis.kill()
            raise

    def close(self) -> None:
        for step in (self.proxy.close, self.collector.close, self.coordinator.stop, self.redis.kill):
            with contextlib.suppress(Exception):
                step()
