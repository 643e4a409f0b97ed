"""Coordinator load benchmark: simulated devices in separate processes, loopback only, JSON out.

Phases: (1) real-time load (every device sends hr 1/s, eeg 2/s, speech 2/s, image 5/s) for --seconds
against `mmer coordinator` (--workers processes on one port), with a subscriber counting fused emotions
(lost frames, windows fused twice or never, coordinator-added latency = receive -> fused published,
after a --warmup-seconds warm-up; with it, as added_latency_ms_p99_with_warmup);
(2) peak: the same devices unpaced for --peak-seconds against the coordinator and (3) against a bare
grpc.aio sink that only acks, under the same generator processes in the same run; ratio = (2) / (3);
between (2) and (3), the subscriber's capacity: one mmer_client subscriber of all subjects while every
frame closes a fusion window (see subscriber_capacity).
The generators share the machine's cores with the server they load: on a small machine both figures
are bounded by that, and by whatever else runs (loadavg_start says how busy the machine was).

    python -m bench.coordinator --devices 1000 --seconds 60 --store redis --json FILE
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.loadgen import (
    ClientSubscriber,
    Load,
    Sink,
    Subscriber,
    cpu_seconds,
    missing_windows,
    pct,
    report,
    run_load,
    start_coordinator,
    start_redis,
    start_redis_cluster,
    steady,
    stop_processes,
    wait_serving,
)


async def bench(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="mmer-bench-"))
    procs = []
    loadavg = os.getloadavg()[0]
    try:
        store = "memory"
        if args.store == "redis":
            redis, store = start_redis(tmp)
            procs.append(redis)
        elif args.store == "redis-cluster":
            nodes, store = start_redis_cluster(tmp)
            procs += nodes
        coordinator, target = start_coordinator(store, args.workers)
        procs.append(coordinator)
        await wait_serving(target, 60)
        await asyncio.sleep(1.0 if args.workers > 1 else 0.2)  # replicas split the shards
        subscriber = Subscriber(target)
        await asyncio.sleep(3)  # the subscriber process starts
        load_start_ns = time.time_ns()
        real = await asyncio.to_thread(run_load, target, args.devices, args.seconds, True, args.procs, "rt")
        await asyncio.sleep(2)  # the last windows' grace, and the stream to the subscriber
        sub_out = await asyncio.to_thread(subscriber.result)
        cpu_start = cpu_seconds(coordinator.pid)
        peak = await asyncio.to_thread(
            run_load, target, args.devices, args.peak_seconds, False, args.procs, "pk"
        )
        coordinator_cpu_s = cpu_seconds(coordinator.pid) - cpu_start
        capacity = await subscriber_capacity(target, args)
        stop_processes([coordinator])  # the sink gets the cores the coordinator had
        sink = await asyncio.to_thread(Sink)
        try:
            cpu_start = cpu_seconds(sink.process.pid)
            sink_run = await asyncio.to_thread(
                run_load, sink.target, args.devices, args.peak_seconds, False, args.procs, "sk"
            )
            sink_cpu_s = cpu_seconds(sink.process.pid) - cpu_start
        finally:
            sink.stop()
    finally:
        stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    windows = sub_out["windows"]
    warmup_s = min(args.warmup_seconds, args.seconds / 2)
    added, hops = steady(sub_out, load_start_ns + int(warmup_s * 1e9))
    return {
        "devices": args.devices,
        "seconds": args.seconds,
        "store": args.store,
        "workers": args.workers,
        "generator_procs": args.procs,
        "cpus": os.cpu_count(),
        "loadavg_start": loadavg,
        "frames_sent": real["sent"],
        "frames_acked": real["acked"],
        "frames_fused": sub_out["contributed"],
        "fused_emotions": sum(windows.values()),
        "lost": real["sent"] - real["acked"],
        "duplicates": sum(n - 1 for n in windows.values() if n > 1),
        "windows_missing": missing_windows(windows),
        "subscriber_resumes": sub_out["resumes"],
        "realtime_fps": real["fps"],
        "ingest_fps": peak["fps"],
        "sink_fps": sink_run["fps"],
        "frames_per_batch": {
            "realtime": real["frames_per_batch"],
            "peak": peak["frames_per_batch"],
            "sink": sink_run["frames_per_batch"],
        },
        "ratio": peak["fps"] / sink_run["fps"] if sink_run["fps"] else float("nan"),
        "warmup_s": warmup_s,
        "added_latency_ms_p50": pct(added, 50),
        "added_latency_ms_p99": pct(added, 99),
        "added_latency_ms_p99_with_warmup": pct(sub_out["added"], 99),
        "latency_ms": {h: {"p50": pct(v, 50), "p99": pct(v, 99)} for h, v in hops.items()},
        # process CPU time (user + system, the coordinator with its workers) over the frames acked, each
        # under the same unpaced load in this run
        "cpu_us_per_frame": {
            "coordinator": 1e6 * coordinator_cpu_s / max(peak["acked"], 1),
            "sink": 1e6 * sink_cpu_s / max(sink_run["acked"], 1),
        },
        # one subscriber of all subjects (mmer_client) while fusion publishes as fast as frames come:
        # emotions received per second, and publish -> receive
        "subscriber": capacity,
        # the subscriber of the real-time phase, which gets what real time offers
        "subscriber_realtime": {
            "emotions_per_s": sum(windows.values()) / args.seconds,
            "p99_ms": pct(hops.get("subscriber", []), 99),
        },
    }


async def subscriber_capacity(target: str, args: argparse.Namespace) -> dict:
    """One mmer_client subscriber of all subjects while the devices send one modality unpaced with window
    ends on their own schedule (an hour back): every frame closes a fusion window, so emotions are published
    as fast as the coordinator ingests. Received per second over the phase (until the last arrived) and
    publish -> receive percentiles."""
    subscriber = ClientSubscriber(target)
    await asyncio.sleep(3)  # the subscriber process starts and pins the stream's end
    started_ns = time.time_ns()
    virtual_from_ns = started_ns - 3600 * 10**9
    load = Load(
        target, args.devices, args.subscriber_seconds, False, args.procs, "sb", {"hr": 1.0}, virtual_from_ns
    )
    sent = await asyncio.to_thread(load.result)
    await asyncio.sleep(2)  # the last windows, and the stream to the subscriber
    out = await asyncio.to_thread(subscriber.result)
    # this phase's subjects only: an earlier phase's last windows may still be published meanwhile
    mine = [i for i, subject in enumerate(out["subjects"]) if subject.startswith("sb-")]
    received, latency = [out["received"][i] for i in mine], [out["latency_ms"][i] for i in mine]
    elapsed_s = (max(received) - started_ns) / 1e9 if received else float("nan")
    return {
        "emotions_per_s": len(received) / elapsed_s if received else 0.0,
        "p50_ms": pct(latency, 50),
        "p99_ms": pct(latency, 99),
        "emotions": len(received),
        "frames_sent": sent["sent"],
        "frames_acked": sent["acked"],
        "seconds": elapsed_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--peak-seconds", type=float, default=10)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=5.0,
        help="latencies are taken after it (at most half the run): each subject's first window waits for its grace",
    )
    parser.add_argument(
        "--store",
        choices=("memory", "redis", "redis-cluster"),
        default="redis",
        help="redis-cluster: a three-node Redis Cluster on loopback",
    )
    parser.add_argument(
        "--subscriber-seconds", type=float, default=10, help="the subscriber capacity phase (one modality)"
    )
    parser.add_argument("--workers", type=int, default=1, help="coordinator processes (SO_REUSEPORT)")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.workers > 1 and args.store == "memory":
        parser.error("--workers > 1 needs a shared store (redis or redis-cluster)")
    started = time.monotonic()
    return report(asyncio.run(bench(args)), started, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
