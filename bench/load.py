"""Load and soak of the coordinator: simulated devices in separate processes, loopback only, JSON out.

load: --devices (default 1,000) devices at real-time rates for --seconds (default 60): frames lost,
windows fused twice or never, ingest rate and coordinator-added latency.
soak: --soak-devices (default 200) for --soak-seconds (default 600), sampling the resident memory (RSS)
of every process (coordinator and its workers, redis-server, load generators, subscriber) every
--sample-seconds; growth = RSS at the end over RSS when the warm-up ended (medians of a few samples each),
goal <= 10 % for the servers and generators (the subscriber keeps every sample it measures, so it grows). The fused stream is capped at --stream-maxlen so that Redis reaches its steady state within
the warm-up instead of growing until its default cap.

    python -m bench.load --json FILE                      # both phases
    python -m bench.load --phases soak --soak-seconds 120 --json FILE
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.loadgen import (
    Load,
    Subscriber,
    missing_windows,
    pct,
    process_tree,
    report,
    rss_bytes,
    start_coordinator,
    start_redis,
    stop_processes,
    wait_serving,
)

GROWTH_GOAL = 0.10
EDGE_SAMPLES = 3  # samples averaged (median) at each end of the measured span


def summary(real: dict, sub: dict, seconds: float, devices: int) -> dict:
    windows = sub["windows"]
    return {
        "devices": devices,
        "seconds": seconds,
        "frames_sent": real["sent"],
        "frames_acked": real["acked"],
        "lost": real["sent"] - real["acked"],
        "fps": real["fps"],
        "fused_emotions": sum(windows.values()),
        "duplicates": sum(n - 1 for n in windows.values() if n > 1),
        "windows_missing": missing_windows(windows),
        "subscriber_resumes": sub["resumes"],
        "added_latency_ms_p50": pct(sub["added"], 50),
        "added_latency_ms_p99": pct(sub["added"], 99),
        "latency_ms": {h: {"p50": pct(v, 50), "p99": pct(v, 99)} for h, v in sub["hops"].items()},
    }


def run_load(target: str, devices: int, seconds: float, procs: int, prefix: str) -> dict:
    subscriber = Subscriber(target)
    time.sleep(3)  # the subscriber process starts
    real = Load(target, devices, seconds, True, procs, prefix).result()
    time.sleep(2)  # the last windows' grace
    return summary(real, subscriber.result(), seconds, devices)


def growth(samples: list[tuple[float, int]], warmup_s: float) -> dict:
    """RSS after the warm-up vs at the end, each the median of a few samples."""
    after = [rss for t, rss in samples if t >= warmup_s and rss > 0]
    if len(after) < 2:
        return {"samples": len(after)}
    k = max(1, min(EDGE_SAMPLES, len(after) // 2))
    start, end = statistics.median(after[:k]), statistics.median(after[-k:])
    return {
        "samples": len(after),
        "rss_mb_after_warmup": start / 2**20,
        "rss_mb_end": end / 2**20,
        "rss_mb_max": max(after) / 2**20,
        "growth_pct": 100.0 * (end - start) / start,
    }


def run_soak(args: argparse.Namespace, target: str, servers: dict[str, int]) -> dict:
    subscriber = Subscriber(target)
    time.sleep(3)
    load = Load(target, args.soak_devices, args.soak_seconds, True, args.procs, "soak")
    watched = {**servers, "subscriber": subscriber.pid}
    watched.update({f"generator-{i}": pid for i, pid in enumerate(load.pids)})
    samples: dict[str, list[tuple[float, int]]] = {}
    started = time.monotonic()
    while time.monotonic() - started < args.soak_seconds:
        t = time.monotonic() - started
        for name, pid in watched.items():
            tree = process_tree(pid) if name == "coordinator" else [pid]
            for n, p in enumerate(tree):  # the coordinator's workers, when --workers > 1
                samples.setdefault(name if n == 0 else f"{name}-worker-{n}", []).append((t, rss_bytes(p)))
        time.sleep(args.sample_seconds)
    real = load.result()
    time.sleep(2)
    result = summary(real, subscriber.result(), args.soak_seconds, args.soak_devices)
    warmup = args.warmup_seconds if args.warmup_seconds is not None else min(60.0, args.soak_seconds / 5)
    result["warmup_seconds"] = warmup
    result["sample_seconds"] = args.sample_seconds
    result["rss"] = {name: growth(s, warmup) for name, s in samples.items()}
    result["rss_trace_mb"] = {name: [round(rss / 2**20, 1) for _, rss in s] for name, s in samples.items()}
    # the subscriber is the bench's own meter: it keeps every latency sample, so it grows by design
    growths = [g["growth_pct"] for n, g in result["rss"].items() if "growth_pct" in g and n != "subscriber"]
    result["max_growth_pct"] = max(growths, default=float("nan"))
    result["growth_goal_pct"] = 100 * GROWTH_GOAL
    result["growth_ok"] = bool(growths) and max(growths) <= 100 * GROWTH_GOAL
    return result


async def serving(target: str) -> None:
    await wait_serving(target, 60)


def bench(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="mmer-load-"))
    procs = []
    out: dict = {
        "store": args.store,
        "workers": args.workers,
        "generator_procs": args.procs,
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg()[0],
    }
    try:
        store, servers = "memory", {}
        if args.store == "redis":
            redis, store = start_redis(tmp)
            procs.append(redis)
            servers["redis"] = redis.pid
        env = {"MMER_COORDINATOR__FUSED_STREAM_MAXLEN": str(args.stream_maxlen)}
        coordinator, target = start_coordinator(store, args.workers, env)
        procs.append(coordinator)
        servers["coordinator"] = coordinator.pid
        asyncio.run(serving(target))
        time.sleep(1.0 if args.workers > 1 else 0.2)
        if "load" in args.phases:
            out["load"] = run_load(target, args.devices, args.seconds, args.procs, "load")
        if "soak" in args.phases:
            out["soak"] = run_soak(args, target, servers)
    finally:
        stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default="load,soak", type=lambda s: set(s.split(",")))
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--soak-devices", type=int, default=200)
    parser.add_argument("--soak-seconds", type=float, default=600)
    parser.add_argument("--warmup-seconds", type=float, help="default: a fifth of the soak, at most 60 s")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--stream-maxlen", type=int, default=10_000)
    parser.add_argument("--store", choices=("memory", "redis"), default="redis")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.phases <= {"load", "soak"}:
        parser.error("--phases: load, soak or load,soak")
    if args.workers > 1 and args.store != "redis":
        parser.error("--workers > 1 needs --store redis")
    started = time.monotonic()
    return report(bench(args), started, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
