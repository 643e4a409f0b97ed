"""Fault scenarios against a running Cluster, each measured by witnesses outside the coordinator.

A scenario starts fresh edges (new device and subject ids), a resuming
subscriber, waits for steady fused output, injects its fault, lets the system
run on, stops the edges (they drain their spools), and then counts:

- produced: frames the edges' spools numbered; acked: the coordinator's durable
  high-water marks (ack = "every seq <= this is stored"); lost: acked seqs that
  are not in the shard frame streams in Redis; unacked: produced - acked.
- fused: emotions of the scenario's subjects in the fused Redis Stream;
  duplicates: windows (subject, window end) fused more than once, in the stream
  plus in what the subscriber received; subscriber_missing: stream emotions the
  subscriber never got.
- max_gap_s: longest pause between consecutive publications of one subject;
  recovery_s: fault end -> first emotion of a window ending after the fault,
  published, worst subject (None when a subject never recovered).
"""

from __future__ import annotations

import contextlib
import itertools
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import redis

from mmer.v1 import registry_pb2, registry_pb2_grpc
from testkit.fault_cluster import (
    SHARD_STREAMS,
    Cluster,
    InProcessEdge,
    ProcessEdge,
    Subscriber,
    fused_stream,
    position_order,
    stream_tail,
    wait_until,
)

_runs = itertools.count(1)


@dataclass
class Size:
    """How big a scenario is: edges (one subject each) and the phases' lengths in seconds."""

    edges: int = 2
    warm_s: float = 2.0
    fault_s: float = 2.0
    tail_s: float = 3.0


@dataclass
class Figures:
    produced: int = 0
    acked: int = 0
    fused: int = 0
    lost: int = 0
    duplicates: int = 0
    max_gap_s: float = 0.0
    recovery_s: float | None = None
    unacked: int = 0
    edge_acked_beyond_store: int = 0
    stored_twice: int = 0
    subscriber_missing: int = 0
    subscriber_breaks: dict[str, int] = field(default_factory=dict)
    windows_dropped: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Run:
    """One scenario in progress: its edges, subscriber and fault timeline (wall-clock ns)."""

    cluster: Cluster
    name: str
    size: Size
    edges: list = field(default_factory=list)
    subscriber: Subscriber | None = None
    start_position: str = "0"
    fault_start_ns: int = 0
    fault_end_ns: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def subjects(self) -> list[str]:
        return [e.subject for e in self.edges]


# Default fusion window (1 s) + grace (0.05 s) + slack: how long the fused stream must be quiet before
# the edges' last windows are surely fused.
SETTLE_S = 1.5


def ns_to_s(ns: int) -> float:
    return round(ns / 1e9, 3)


def start_edges(run: Run, process_edges: int = 0) -> None:
    c = run.cluster
    tag = f"{run.name.replace('_', '-')}-{next(_runs)}"
    for i in range(run.size.edges):
        kind = ProcessEdge if i < process_edges else InProcessEdge
        workdir = c.workdir / tag / f"edge{i}"
        workdir.mkdir(parents=True)
        edge = kind(f"{tag}-d{i}", f"{tag}-s{i}", c.proxy.target, c.bundles, workdir, c.modalities, seed=i)
        run.edges.append(edge)
        if isinstance(edge, ProcessEdge):
            edge.start()
    run.start_position = stream_tail(c.redis.url)
    run.subscriber = Subscriber(c.coordinator.target, run.subjects, run.start_position)
    wait_until(lambda: all(_connected(e) for e in run.edges), 60, "edges connected")
    wait_until(lambda: _subjects_seen(run) == set(run.subjects), 30, "first fused emotion of every subject")


def _connected(edge) -> bool:
    return edge.connected if isinstance(edge, InProcessEdge) else edge.proc is not None


def _subjects_seen(run: Run, after_ns: int = 0) -> set[str]:
    return {r.emotion.subject_id for r in list(run.subscriber.received) if r.emotion.window_end_ns > after_ns}


def fault_window(run: Run, inject: Callable[[], None]) -> None:
    """Warm up, run the fault (inject blocks until the fault has ended), then wait for recovery and the tail."""
    time.sleep(run.size.warm_s)
    run.fault_start_ns = time.time_ns()
    inject()
    if not run.fault_end_ns:
        run.fault_end_ns = time.time_ns()
    with contextlib.suppress(TimeoutError):  # a subject that never recovers shows as recovery_s None
        wait_until(lambda: _subjects_seen(run, run.fault_end_ns) == set(run.subjects), 30, "recovery")
    time.sleep(run.size.tail_s)


def finish(run: Run) -> Figures:
    """Stop the edges (drain), let the subscriber catch up, and count."""
    c = run.cluster
    figures = Figures(extra=run.extra)
    edge_figures, tail = [], ""
    try:
        with ThreadPoolExecutor(len(run.edges)) as pool:  # edges drain in parallel, as separate devices do
            edge_figures = list(zip(run.edges, pool.map(lambda e: e.stop(), run.edges), strict=True))
        tail = settled_tail(c.redis.url)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: run.subscriber.caught_up(tail), 15, "subscriber caught up")
    finally:
        closed_ns = time.time_ns()
        run.subscriber.close()
    devices = {e.device_id for e in run.edges}
    stored = c.collector.snapshot(devices)
    hwm = high_water_marks(c.redis.url, run.edges, c.modalities)
    for edge, ef in edge_figures:
        for m in c.modalities:
            produced, acked = ef["produced"].get(m, 0), hwm.get((edge.device_id, m), 0)
            figures.produced += produced
            figures.acked += acked
            figures.unacked += max(produced - acked, 0)
            figures.edge_acked_beyond_store += max(ef["edge_acked"].get(m, 0) - acked, 0)
            figures.lost += sum(1 for seq in range(1, acked + 1) if (edge.device_id, m, seq) not in stored)
        figures.windows_dropped += ef.get("windows_dropped", 0) + ef["spool_dropped"]
    figures.stored_twice = c.collector.extra_copies(devices)
    stream = fused_stream(c.redis.url, set(run.subjects))
    figures.fused = len(stream)
    windows = Counter((e.subject_id, e.window_end_ns) for e in stream)
    received = [r.emotion for r in run.subscriber.received]
    got = Counter((e.subject_id, e.window_end_ns) for e in received)
    figures.duplicates = sum(n - 1 for n in windows.values()) + sum(n - 1 for n in got.values())
    live = {e.position for e in stream if _after(e.position, run.start_position)}
    missing = live - {e.position for e in received}
    figures.subscriber_missing = len(missing)
    if missing:  # what was missed, against when the subscriber was let go: tells a harness race from a loss
        figures.extra["missed"] = [
            {
                "position": e.position,
                "subject": e.subject_id,
                "window_end_ns": e.window_end_ns,
                "published_ns": e.published_ns,
                "tail": tail,
                "closed_ns": closed_ns,
                "at": run.subscriber.position,
            }
            for e in stream
            if e.position in missing
        ]
    figures.subscriber_breaks = dict(run.subscriber.breaks)
    figures.max_gap_s, figures.recovery_s = gaps(stream, run.subjects, run.fault_end_ns)
    return figures


def settled_tail(redis_url: str, quiet_s: float = SETTLE_S, timeout_s: float = 15.0) -> str:
    """The fused stream's tail once nothing was appended for quiet_s: after the edges stop, their last
    windows are still fused when their grace runs out, up to a fusion window later; a subscriber let go
    before that would miss them."""
    tail, since = stream_tail(redis_url), time.monotonic()
    deadline = since + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = stream_tail(redis_url)
        if now != tail:
            tail, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return tail


def _after(position: str, start: str) -> bool:
    return position_order(position) > position_order(start)


def gaps(stream, subjects: list[str], fault_end_ns: int) -> tuple[float, float | None]:
    """Longest publication gap of any subject; recovery = fault end -> first fresh window published."""
    max_gap, recovery = 0, 0
    for s in subjects:
        published = sorted(e.published_ns for e in stream if e.subject_id == s)
        max_gap = max([max_gap, *(b - a for a, b in itertools.pairwise(published))])
        fresh = [e.published_ns for e in stream if e.subject_id == s and e.window_end_ns > fault_end_ns]
        if not fresh:
            return ns_to_s(max_gap), None
        recovery = max(recovery, min(fresh) - fault_end_ns)
    return ns_to_s(max_gap), ns_to_s(recovery)


def high_water_marks(redis_url: str, edges, modalities: list[str]) -> dict[tuple[str, str], int]:
    """The coordinator's durable ack marks (shard hash `device/modality` -> seq), read from Redis."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        out = {}
        for e in edges:
            shard = zlib.crc32(e.subject.encode()) % SHARD_STREAMS
            for m in modalities:
                value = client.hget(f"mmer:{{s{shard}}}:hwm", f"{e.device_id}/{m}")
                out[(e.device_id, m)] = int(value or 0)
        return out
    finally:
        client.close()


# ----------------------------------------------------------------------------- the scenarios


def proxy_delay(cluster: Cluster, size: Size) -> Figures:
    """300 ms added each way on the edge <-> coordinator link for the fault's duration."""
    run = Run(cluster, "proxy_delay", size)
    start_edges(run)

    def inject() -> None:
        cluster.proxy.set_delay(0.3)
        time.sleep(size.fault_s)
        cluster.proxy.heal()

    fault_window(run, inject)
    return finish(run)


def proxy_stall(cluster: Cluster, size: Size) -> Figures:
    """Connections stay open but carry nothing (a black-holed route), then flow again."""
    run = Run(cluster, "proxy_stall", size)
    start_edges(run)

    def inject() -> None:
        cluster.proxy.set_stalled(True)
        time.sleep(size.fault_s)
        cluster.proxy.heal()

    fault_window(run, inject)
    return finish(run)


def proxy_drop(cluster: Cluster, size: Size) -> Figures:
    """Every connection reset, and new ones refused, for the fault's duration."""
    run = Run(cluster, "proxy_drop", size)
    start_edges(run)

    def inject() -> None:
        run.extra["connections_before"] = cluster.proxy.proxy.connections
        cluster.proxy.drop_all(refuse_s=size.fault_s)
        time.sleep(size.fault_s)
        cluster.proxy.heal()

    fault_window(run, inject)
    run.extra["connections_after"] = cluster.proxy.proxy.connections
    return finish(run)


def coordinator_restart(cluster: Cluster, size: Size) -> Figures:
    """SIGKILL the coordinator mid-stream; start it again after fault_s. The fault ends when it serves."""
    run = Run(cluster, "coordinator_restart", size)
    start_edges(run)

    def inject() -> None:
        cluster.coordinator.kill()
        time.sleep(size.fault_s)
        run.extra["restart_s"] = round(cluster.coordinator.start(), 3)
        run.fault_end_ns = time.time_ns()

    fault_window(run, inject)
    return finish(run)


def redis_restart(cluster: Cluster, size: Size) -> Figures:
    """SIGKILL redis-server (AOF, fsync always) mid-stream; start it again on the same port after fault_s."""
    run = Run(cluster, "redis_restart", size)
    start_edges(run)

    def inject() -> None:
        cluster.redis.kill()
        time.sleep(size.fault_s)
        started = time.monotonic()
        cluster.redis.start()
        run.extra["restart_s"] = round(time.monotonic() - started, 3)

    fault_window(run, inject)
    return finish(run)


def edge_restart(cluster: Cluster, size: Size) -> Figures:
    """SIGKILL a real `mmer node` process; restart it on the same spool (unacked frames are resent)."""
    run = Run(cluster, "edge_restart", size)
    start_edges(run, process_edges=1)
    node = run.edges[0]

    def inject() -> None:
        node.kill()
        time.sleep(size.fault_s)
        run.extra["restart_s"] = round(node.start(), 3)  # until its stream is connected again
        run.fault_end_ns = time.time_ns()

    fault_window(run, inject)
    return finish(run)


def slow_subscriber(cluster: Cluster, size: Size) -> Figures:
    """A subscriber that stops reading (tiny HTTP/2 window) must be cut off and then resume without gaps or
    duplicates, while ingest, fusion and a normal subscriber carry on."""
    from mmer.v1 import admin_pb2, admin_pb2_grpc

    run = Run(cluster, "slow_subscriber", size)
    start_edges(run)
    channel = grpc.insecure_channel(cluster.coordinator.target)
    admin = admin_pb2_grpc.AdminStub(channel)

    def cut() -> int:
        return admin.GetStats(admin_pb2.GetStatsRequest(), timeout=5).counters["subscribers_cut"]

    slow: list[Subscriber] = []

    def inject() -> None:
        cut_before = cut()
        created = time.monotonic()
        slow.append(
            Subscriber(
                cluster.coordinator.target, run.subjects, run.start_position, pause_s=3600, window_bytes=1024
            )
        )
        with contextlib.suppress(TimeoutError):
            cut_at = wait_until(
                lambda: cut() > cut_before, max(size.fault_s, 60), "slow subscriber cut off", 0.2
            )
            run.extra["slow_cut_after_s"] = round(cut_at - created, 3)  # from its subscription, +-0.2 s
        tail = stream_tail(cluster.redis.url)
        slow[0].speed_up()
        sped_up = time.monotonic()
        caught = wait_until(lambda: slow[0].caught_up(tail), 30, "slow subscriber caught up")
        run.extra["slow_catch_up_s"] = round(caught - sped_up, 3)

    try:
        fault_window(run, inject)
        figures = finish(run)
        tail = stream_tail(cluster.redis.url)
        wait_until(lambda: slow[0].caught_up(tail), 30, "slow subscriber caught up at the end")
    finally:
        for s in slow:
            s.close()
        channel.close()
    stream = fused_stream(cluster.redis.url, set(run.subjects))
    mine = [r.emotion for r in slow[0].received]
    got = Counter((e.subject_id, e.window_end_ns) for e in mine)
    live = {e.position for e in stream if _after(e.position, run.start_position)}
    figures.duplicates += sum(n - 1 for n in got.values())
    figures.subscriber_missing += len(live - {e.position for e in mine})
    figures.extra.update({f"slow_breaks_{k}": v for k, v in slow[0].breaks.items()})
    return figures


def trainer_push(cluster: Cluster, size: Size) -> Figures:
    """PushModel of a new signed version of every modality while the edges stream: each connected edge
    must serve it within 5 s (first frame scored by it stored) with no window dropped."""
    from testkit.edge_models import bundle_blobs, make_bundle

    run = Run(cluster, "trainer_push", size)
    start_edges(run)
    channel = grpc.insecure_channel(cluster.coordinator.target)
    stub = registry_pb2_grpc.RegistryStub(channel)
    listed = stub.ListModels(registry_pb2.ListModelsRequest(), timeout=10).versions
    version = max([1, *(v.version for v in listed)]) + 1
    bundles = [
        make_bundle(cluster.workdir / f"push-v{version}" / m, cluster.bundles.keys, m, version, seed=version)
        for m in cluster.modalities
    ]

    def inject() -> None:
        for b in bundles:
            chunks = [registry_pb2.BundleChunk(manifest=b.manifest)]
            chunks += [
                registry_pb2.BundleChunk(file=registry_pb2.FileChunk(name=name, offset=0, data=data))
                for name, data in bundle_blobs(b).items()
            ]
            stub.PushModel(iter(chunks), timeout=30)

    devices = {e.device_id for e in run.edges}
    expected = len(devices) * len(cluster.modalities)

    def firsts() -> dict[tuple[str, str], int]:
        """When each (device, modality) first had a frame scored by the new version stored."""
        out: dict[tuple[str, str], int] = {}
        for (device, modality, _), f in cluster.collector.snapshot(devices).items():
            if f.model_version == version:
                out[(device, modality)] = min(out.get((device, modality), f.receive_ns), f.receive_ns)
        return out

    try:
        fault_window(run, inject)
        wait_until(lambda: all(set(e.versions().values()) == {version} for e in run.edges), 15, "edges on v")
        wait_until(lambda: len(firsts()) == expected, 15, "a window of every modality scored by v")
    except TimeoutError:
        pass
    finally:
        channel.close()
    run.extra["version"] = version
    run.extra["edges_serving"] = sum(set(e.versions().values()) == {version} for e in run.edges)
    figures = finish(run)
    served = firsts()
    figures.extra["serving_s"] = (
        ns_to_s(max(served.values()) - run.fault_end_ns) if len(served) == expected else None
    )
    return figures


SCENARIOS: dict[str, Callable[[Cluster, Size], Figures]] = {
    "proxy_delay": proxy_delay,
    "proxy_stall": proxy_stall,
    "proxy_drop": proxy_drop,
    "slow_subscriber": slow_subscriber,
    "edge_restart": edge_restart,
    "redis_restart": redis_restart,
    "coordinator_restart": coordinator_restart,
    "trainer_push": trainer_push,
}


def open_cluster(workdir: Path, modalities: list[str]) -> Cluster:
    return Cluster(workdir, modalities)
