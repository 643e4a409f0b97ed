"""Fault scenarios on a real deployment on 127.0.0.1: redis-server (AOF), `mmer coordinator`, a fault proxy,
real edge agents and `mmer node` processes with tiny signed models.

Every scenario must keep the system's promises: no frame the coordinator acked is missing from Redis, no
fusion window published twice (in the stream or to a resuming subscriber), the subscriber misses nothing,
and fresh fused emotions flow again after the fault ends (within 5 s is the goal that bench/faults.py
judges). The figures come from witnesses outside
the coordinator (testkit/fault_scenarios.py); bench/faults.py runs the same scenarios bigger.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.fault_scenarios import SCENARIOS as RUN
from testkit.fault_scenarios import Figures, Size, open_cluster

ROOT = Path(__file__).resolve().parents[1]
SIZE = Size(edges=2, warm_s=1.0, fault_s=2.0, tail_s=0.5)
# Tests check that service comes back at all, in bounded time; the 5 s goal is a timing figure that
# bench/faults.py measures and judges (goals.<scenario>), since a loaded CI machine may stretch it.
RECOVERY_BOUND_S = 30.0
pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = open_cluster(tmp_path_factory.mktemp("faults"), ["image", "speech"])
    yield c
    c.close()


def assert_promises_kept(f: Figures) -> None:
    assert f.produced > 0 and f.fused > 0, f
    assert f.lost == 0, f"acked frames missing from the store: {f}"
    assert f.unacked == 0 and f.acked == f.produced, f"frames never acked after the edges drained: {f}"
    assert f.edge_acked_beyond_store == 0, f"edge trimmed frames the coordinator never acked: {f}"
    assert f.stored_twice == 0, f"a frame stored twice: {f}"
    assert f.duplicates == 0, f"fusion windows published twice: {f}"
    assert f.subscriber_missing == 0, f"subscriber missed emotions: {f}"
    assert f.recovery_s is not None and f.recovery_s <= RECOVERY_BOUND_S, (
        f"no recovery within {RECOVERY_BOUND_S:.0f} s: {f}"
    )


def test_proxy_delay_adds_latency_without_losing_or_repeating(cluster) -> None:
    f = RUN["proxy_delay"](cluster, SIZE)
    assert_promises_kept(f)


def test_proxy_stall_then_flow_again(cluster) -> None:
    f = RUN["proxy_stall"](cluster, SIZE)
    assert_promises_kept(f)
    assert f.max_gap_s >= SIZE.fault_s * 0.5, f"a stalled link should pause the fused stream: {f}"


def test_proxy_drop_makes_edges_reconnect_and_resend(cluster) -> None:
    f = RUN["proxy_drop"](cluster, SIZE)
    assert_promises_kept(f)
    assert f.extra["connections_after"] > f.extra["connections_before"], f


def test_trainer_push_reaches_every_edge_and_serves_with_no_window_dropped(cluster) -> None:
    f = RUN["trainer_push"](cluster, SIZE)
    assert_promises_kept(f)
    assert f.extra["edges_serving"] == SIZE.edges, f
    assert f.extra["serving_s"] is not None and f.extra["serving_s"] <= RECOVERY_BOUND_S, f
    assert f.windows_dropped == 0, f


@pytest.mark.slow
def test_slow_subscriber_is_cut_off_and_resumes_while_others_carry_on(cluster) -> None:
    f = RUN["slow_subscriber"](cluster, SIZE)
    assert_promises_kept(f)
    assert f.extra.get("slow_breaks_RESOURCE_EXHAUSTED", 0) >= 1, f"the slow reader was never cut off: {f}"
    assert f.max_gap_s < 3.0, f"a slow subscriber stalled fusion for the others: {f}"


@pytest.mark.slow
def test_edge_node_killed_and_restarted_resends_its_spool(cluster) -> None:
    f = RUN["edge_restart"](cluster, SIZE)
    assert_promises_kept(f)


@pytest.mark.slow
def test_redis_killed_and_restarted_with_aof(cluster) -> None:
    f = RUN["redis_restart"](cluster, SIZE)
    assert_promises_kept(f)


@pytest.mark.slow
def test_coordinator_killed_and_restarted_mid_stream(cluster) -> None:
    f = RUN["coordinator_restart"](cluster, SIZE)
    assert_promises_kept(f)


@pytest.mark.slow
def test_bench_faults_writes_sane_json(tmp_path) -> None:
    out = tmp_path / "faults.json"
    cmd = [
        sys.executable,
        "-m",
        "bench.faults",
        "--json",
        str(out),
        "--only",
        "proxy_drop",
        "--edges",
        "1",
        "--warm",
        "1",
        "--fault",
        "1",
        "--tail",
        "0.5",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    # exit 1 is also how the bench says a goal was missed: whether it ran is the JSON it wrote; how fast the
    # edge came back on this machine is the bench's figure, not this test's
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    figures = data["scenarios"]["proxy_drop"]
    for key in ("produced", "acked", "fused", "lost", "duplicates", "max_gap_s", "recovery_s"):
        assert key in figures, key
    assert figures["produced"] >= figures["acked"] > 0
    assert figures["fused"] > 0 and figures["lost"] == 0 and figures["duplicates"] == 0
    assert figures["unacked"] == 0 and figures["subscriber_missing"] == 0
    assert figures["recovery_s"] >= 0 and figures["max_gap_s"] > 0
    met = figures["recovery_s"] <= 5  # the recovery goal, judged as the bench judges it
    assert data["goals"] == {"proxy_drop": met}, (data["goals"], figures["recovery_s"])
    assert proc.returncode == (0 if met else 1), proc.stderr[-2000:]
