"""The coordinator benches run at a tiny size and write sane JSON (the figures themselves are bench work)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(script: str, out: Path, *args: str) -> dict:
    subprocess.run(
        [sys.executable, "-m", f"bench.{script}", *args, "--procs", "1", "--json", str(out)],
        cwd=ROOT,
        check=True,
        timeout=240,
        stdout=subprocess.DEVNULL,
    )
    return json.loads(out.read_text())


@pytest.mark.parametrize("store, workers", [("memory", 1), ("redis-cluster", 2)])
def test_coordinator_bench_writes_every_field_of_the_issue(tmp_path: Path, store: str, workers: int) -> None:
    got = run(
        "coordinator",
        tmp_path / "c.json",
        "--devices",
        "10",
        "--seconds",
        "3",
        "--peak-seconds",
        "1",
        "--subscriber-seconds",
        "2",
        "--subscriber-rate",
        "50",
        "--store",
        store,
        "--workers",
        str(workers),
    )
    for key in (
        "devices",
        "seconds",
        "store",
        "frames_sent",
        "frames_acked",
        "frames_fused",
        "lost",
        "duplicates",
        "ingest_fps",
        "sink_fps",
        "ratio",
        "added_latency_ms_p50",
        "added_latency_ms_p99",
    ):
        assert key in got, key
    assert (got["devices"], got["store"], got["workers"]) == (10, store, workers)
    assert got["frames_sent"] == got["frames_acked"] > 0 and got["lost"] == 0 and got["duplicates"] == 0
    assert got["frames_fused"] > 0 and got["fused_emotions"] > 0
    assert (
        got["ingest_fps"] > 0 and got["sink_fps"] > 0 and got["ratio"] == got["ingest_fps"] / got["sink_fps"]
    )
    assert 0 <= got["added_latency_ms_p50"] <= got["added_latency_ms_p99"]
    cpu = got["cpu_us_per_frame"]
    assert cpu["coordinator"] > 0 and cpu["sink"] > 0, cpu
    real = got["realtime_cpu"]  # both processes worked under the same paced load, at a few frames per batch
    assert real["coordinator_us_per_frame"] > 0 and real["sink_us_per_frame"] > 0, real
    assert real["sink_percent_of_core"] > 0 and real["coordinator_percent_of_core"] > 0, real
    assert 1 <= real["sink_frames_per_batch"] <= got["frames_per_batch"]["sink"], real
    for phase in ("subscriber", "subscriber_peak"):  # every frame closes a fusion window: one emotion each
        sub = got[phase]
        assert sub["emotions"] == sub["frames_acked"] > 0 and sub["emotions_per_s"] > 0, (phase, sub)
        assert 0 <= sub["p50_ms"] <= sub["p99_ms"], (phase, sub)
    paced = got["subscriber"]  # 10 devices paced at 50 emotions/s in all, for 2 s
    assert paced["rate_asked"] == 50 and 35 <= paced["emotions_per_s"] <= 65, paced
    assert got["subscriber_peak"]["rate_asked"] is None
    assert got["subscriber_realtime"]["emotions_per_s"] > 0 and got["subscriber_realtime"]["p99_ms"] >= 0
    assert got["warmup_s"] == 1.5, "at most half the run"
    batch = got["frames_per_batch"]  # unpaced, a batch holds a frame of each of the 10 devices' 4 modalities
    assert 1 <= batch["realtime"] <= batch["peak"] and batch["peak"] == batch["sink"] == 40, batch
    for hop in ("queue", "inference", "network", "wait", "fuse", "publish", "subscriber"):
        assert 0 <= got["latency_ms"][hop]["p50"] <= got["latency_ms"][hop]["p99"], hop


def test_load_bench_runs_both_phases_and_samples_every_process(tmp_path: Path) -> None:
    got = run(
        "load",
        tmp_path / "l.json",
        "--devices",
        "10",
        "--seconds",
        "2",
        "--soak-devices",
        "5",
        "--soak-seconds",
        "6",
        "--warmup-seconds",
        "2",
        "--sample-seconds",
        "0.5",
        "--store",
        "redis",
    )
    for phase in ("load", "soak"):
        p = got[phase]
        assert p["frames_sent"] == p["frames_acked"] > 0 and p["lost"] == 0 and p["duplicates"] == 0, phase
        assert p["fused_emotions"] > 0 and p["added_latency_ms_p50"] <= p["added_latency_ms_p99"], phase
    rss = got["soak"]["rss"]
    assert {"coordinator", "redis", "subscriber", "generator-0"} <= set(rss)
    for name, g in rss.items():
        assert g["samples"] >= 2 and g["rss_mb_after_warmup"] > 1 and math.isfinite(g["growth_pct"]), name
    assert got["soak"]["max_growth_pct"] == max(g["growth_pct"] for n, g in rss.items() if n != "subscriber")
    assert isinstance(got["soak"]["growth_ok"], bool)
