"""`mmer node` as a process: killed with frames unacked, restarted, the spool's frames are resent."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge_node.cli import configure
from edge_node.spool import Spool
from testkit.edge_models import make_bundle
from testkit.edge_servicer import EdgeTestServer

ROOT = Path(__file__).resolve().parents[1]


def node_cmd(tmp_path: Path, port: int, seconds: float, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mmer_cli",
        "node",
        "--coordinator",
        f"127.0.0.1:{port}",
        "--device-id",
        "dev1",
        "--subject",
        "s1",
        "--source",
        "synthetic:4",
        "--modalities",
        "eeg",
        "--models",
        str(tmp_path / "models"),
        "--spool",
        str(tmp_path / "spool"),
        "--token",
        "tok",
        "--fast",
        "--seconds",
        str(seconds),
        "--stats-json",
        str(tmp_path / "stats.json"),
        *extra,
    ]


@pytest.mark.slow
async def test_killed_node_resends_unacked_frames_after_restart(tmp_path):
    make_bundle(tmp_path / "models" / "eeg", tmp_path / "models", "eeg", 1)
    srv = EdgeTestServer()
    await srv.start()
    port = srv.port
    await srv.stop()  # the coordinator is down: frames pile up in the spool
    proc = subprocess.Popen(node_cmd(tmp_path, port, 20.0), stderr=subprocess.PIPE)
    spool_dir = tmp_path / "spool"
    for _ in range(600):  # up to 30 s: process start-up is slow on a loaded machine
        await asyncio.sleep(0.05)
        if spool_dir.exists() and any(p.stat().st_size > 1500 for p in spool_dir.glob("seg-*.log")):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    spooled = Spool(spool_dir).depth
    assert spooled > 0
    await srv.start()
    out = await asyncio.to_thread(
        subprocess.run,
        node_cmd(tmp_path, port, 3.0, ("--health-port", "0")),
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    stats = json.loads((tmp_path / "stats.json").read_text())
    await srv.stop()
    seqs = srv.store.seqs("eeg")
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= spooled + 3 and stats["frames_unacked"] == 0 and stats["frames_lost"] == 0
    assert srv.store.auth[0] == "Bearer tok"


async def test_health_probe_reports_serving(tmp_path):
    from edge_node.health import SERVICE, set_serving, start_health

    server, servicer, port = await start_health(0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        req = health_pb2.HealthCheckRequest(service=SERVICE)
        assert (await stub.Check(req)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        await set_serving(servicer, True)
        assert (await stub.Check(req)).status == health_pb2.HealthCheckResponse.SERVING
    await server.stop(grace=None)


def test_a_node_without_a_health_port_does_not_load_the_health_service():
    # grpc_health's servicer and messages cost ~1.8 MB of the node's memory budget
    probe = (
        "import sys, edge_node.node; print(sorted(m for m in sys.modules if m.startswith('grpc_health.v1')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--modalities", "eeg,smell"), "smell"),
        (("--source", "camera:0"), "camera:0"),
        (("--source", "replay:/nonexistent.npz"), "not an existing .npz"),
        (("--drop-policy", "keep-all"), "policy"),
        (("--batch-interval-ms", "-5"), "batch interval must be within 0..10 s, got -0.005"),
    ],
)
def test_bad_options_give_clear_errors(tmp_path, capsys, extra, message):
    make_bundle(tmp_path / "models" / "eeg", tmp_path / "models", "eeg", 1)
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args([*node_cmd(tmp_path, 1, 1.0)[4:], *extra])
    assert args.run(args) == 2
    assert message in capsys.readouterr().err
