"""Coordinator load benchmark: simulated devices in separate processes, loopback only, JSON out.

Phases: (1) real-time load (every device sends hr 1/s, eeg 2/s, speech 2/s, image 5/s) for --seconds
against `mmer coordinator` (--workers processes on one port), with a subscriber counting fused emotions
(lost frames, windows fused twice or never, coordinator-added latency = receive -> fused published,
after a --warmup-seconds warm-up; with it, as added_latency_ms_p99_with_warmup);
(2) peak: the same devices unpaced for --peak-seconds against the coordinator and (3) against a bare
grpc.aio sink that only acks, under the same generator processes in the same run; ratio = (2) / (3);
between (2) and (3), one mmer_client subscriber of all subjects while every frame closes a fusion window
(see subscriber_phase): at --subscriber-rate emotions/s (does it keep up, and how late), then unpaced (how
many it can take); (4) the real-time load of (1) against the sink, so that realtime_cpu sets the
coordinator's share of a core in real time beside a bare sink's under the same load.
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
        cpu_start = cpu_seconds(coordinator.pid)
        real = await asyncio.to_thread(run_load, target, args.devices, args.seconds, True, args.procs, "rt")
        coordinator_realtime_cpu_s = cpu_seconds(coordinator.pid) - cpu_start
        await asyncio.sleep(2)  # the last windows' grace, and the stream to the subscriber
        sub_out = await asyncio.to_thread(subscriber.result)
        cpu_start = cpu_seconds(coordinator.pid)
        peak = await asyncio.to_thread(
            run_load, target, args.devices, args.peak_seconds, False, args.procs, "pk"
        )
        coordinator_cpu_s = cpu_seconds(coordinator.pid) - cpu_start
        subscriber_paced = await subscriber_phase(target, args, "sb", args.subscriber_rate)
        subscriber_peak = await subscriber_phase(target, args, "sp", None)
        stop_processes([coordinator])  # the sink gets the cores the coordinator had
        sink = await asyncio.to_thread(Sink)
        try:
            cpu_start = cpu_seconds(sink.process.pid)
            sink_run = await asyncio.to_thread(
                run_load, sink.target, args.devices, args.peak_seconds, False, args.procs, "sk"
            )
            sink_cpu_s = cpu_seconds(sink.process.pid) - cpu_start
            cpu_start = cpu_seconds(sink.process.pid)
            sink_real = await asyncio.to_thread(
                run_load, sink.target, args.devices, args.seconds, True, args.procs, "sr"
            )
            sink_realtime_cpu_s = cpu_seconds(sink.process.pid) - cpu_start
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
        # the same real-time load (phase 1) against the coordinator and then the bare sink: the share of one
        # core each process took, and per frame; gRPC's own cost per message shows in the sink's figure
        "realtime_cpu": {
            "coordinator_percent_of_core": 100 * coordinator_realtime_cpu_s / args.seconds,
            "sink_percent_of_core": 100 * sink_realtime_cpu_s / args.seconds,
            "coordinator_us_per_frame": 1e6 * coordinator_realtime_cpu_s / max(real["acked"], 1),
            "sink_us_per_frame": 1e6 * sink_realtime_cpu_s / max(sink_real["acked"], 1),
            "sink_frames_per_batch": sink_real["frames_per_batch"],
        },
        # one subscriber of all subjects (mmer_client), fusion publishing at --subscriber-rate emotions/s:
        # emotions received per second, and publish -> receive
        "subscriber": subscriber_paced,
        # the same, publishing as fast as frames come (unpaced): what it takes at most, and how late then
        "subscriber_peak": subscriber_peak,
        # the subscriber of the real-time phase, which gets what real time offers
        "subscriber_realtime": {
            "emotions_per_s": sum(windows.values()) / args.seconds,
            "p99_ms": pct(hops.get("subscriber", []), 99),
        },
    }


async def subscriber_phase(target: str, args: argparse.Namespace, prefix: str, rate: float | None) -> dict:
    """One mmer_client subscriber of all subjects while the devices send one modality with window ends on a
    schedule of their own (an hour back), one window apart: every frame closes a fusion window. Paced, the
    devices together send `rate` frames a second, so fusion publishes `rate` emotions a second; unpaced
    (rate None), as fast as the coordinator ingests. Received per second (first to last) and publish ->
    receive percentiles."""
    subscriber = ClientSubscriber(target)
    await asyncio.sleep(3)  # the subscriber process starts and pins the stream's end
    virtual_from_ns = time.time_ns() - 3600 * 10**9
    per_device = rate / args.devices if rate else 1.0
    load = Load(
        target,
        args.devices,
        args.subscriber_seconds,
        rate is not None,
        args.procs,
        prefix,
        {"hr": per_device},
        virtual_from_ns,
    )
    sent = await asyncio.to_thread(load.result)
    await asyncio.sleep(2)  # the last windows, and the stream to the subscriber
    out = await asyncio.to_thread(subscriber.result)
    # this phase's subjects only: an earlier phase's last windows may still be published meanwhile
    mine = [i for i, subject in enumerate(out["subjects"]) if subject.startswith(f"{prefix}-")]
    received, latency = [out["received"][i] for i in mine], [out["latency_ms"][i] for i in mine]
    # from the first emotion received to the last: the generators' own start-up is not the subscriber's
    elapsed_s = (max(received) - min(received)) / 1e9 if len(received) > 1 else float("nan")
    return {
        "rate_asked": rate,
        "emotions_per_s": (len(received) - 1) / elapsed_s if len(received) > 1 else 0.0,
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
        "--subscriber-seconds", type=float, default=10, help="each subscriber phase (one modality)"
    )
    parser.add_argument(
        "--subscriber-rate", type=float, default=5000, help="fused emotions/s of the paced subscriber phase"
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
