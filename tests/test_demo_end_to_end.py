"""`mmer demo` end to end on tiny signed models: real Redis, coordinator, nodes, push and the final figures."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmer_core.modalities import MODALITIES
from testkit.edge_models import make_bundle

pytestmark = pytest.mark.slow


def tiny_models(directory: Path) -> Path:
    for i, modality in enumerate(MODALITIES):
        make_bundle(directory / modality, directory / "keys", modality, version=1, seed=i)
    return directory


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain text (the demo's run directory names all its children)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


def demo_argv(models: Path, run_dir: Path, seconds: int, *extra: str) -> list[str]:
    """`mmer demo` with the given bundles and two devices, its dashboard on a free port."""
    return [
        *(sys.executable, "-m", "mmer_cli", "demo", "--models", str(models), "--seconds", str(seconds)),
        *("--devices", "2", "--http-port", "0", "--run-dir", str(run_dir), *extra),
    ]


def test_demo_streams_pushes_and_reports_every_figure(tmp_path: Path) -> None:
    models = tiny_models(tmp_path / "models")
    out = tmp_path / "demo.json"
    proc = subprocess.run(
        demo_argv(models, tmp_path / "run", 70, "--json", str(out)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "dashboard: http://127.0.0.1:" in proc.stdout
    viewer = next((tmp_path / "run").glob("run-*/viewer.token"))
    assert f"log in with the token in {viewer}" in proc.stdout and viewer.stat().st_mode & 0o077 == 0
    assert viewer.read_text().strip() not in proc.stdout + proc.stderr, "the token itself is never printed"
    assert "using the bundles in" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["store"] == "redis"
    frames = figures["frames"]
    assert frames["lost"] == 0 and frames["sent"] > 0
    assert frames["acked"] == frames["sent"]
    assert figures["fused_windows"] > 0
    assert 0.0 <= figures["fused_accuracy"] <= 1.0
    assert set(figures["modality_accuracy"]) == set(MODALITIES)
    for hop in ("inference", "network", "fuse", "total"):
        p = figures["latency_ms"][hop]
        assert 0 <= p["p50"] <= p["p99"], hop
    assert figures["model_versions"] == {f"wearable-{i}": dict.fromkeys(MODALITIES, 1) for i in (1, 2)}
    assert 0 < figures["push_to_serving_s"] < 30
    assert "every node serves every model" in proc.stdout
    lines = proc.stdout.splitlines()
    fused = [line for line in lines if line.startswith("subject-") and "confidence" in line]
    assert fused, "the fused stream is printed, one line per subject and second"
    assert all("(weights)" in line and line.split()[1] in {"happy", "angry", "sad", "calm"} for line in fused)
    for heading in ("Accuracy against the synthetic truth", "Latency per hop, ms", "Model version each node"):
        assert any(line.startswith(heading) or line.strip().startswith(heading) for line in lines), heading
    assert any("total" in line and "window end -> fused emotion published" in line for line in lines)
    assert any(
        line.strip().startswith("fused stream") and line.rstrip().endswith("windows)") for line in lines
    )
    assert f"log in with the token in {viewer}" in lines[-1], "the last line says how to open the dashboard"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_demo_exits_0_and_leaves_no_process(tmp_path: Path, sig: signal.Signals) -> None:
    models = tiny_models(tmp_path / "models")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        demo_argv(models, run_dir, 120, "--store", "memory"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's Ctrl-C finds it
    )
    lines = []
    deadline = time.monotonic() + 90
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("subject-") or time.monotonic() > deadline:
            break
    assert any(line.startswith("subject-") for line in lines), "".join(lines)
    assert len(processes_mentioning(str(run_dir))) >= 3, "coordinator and two nodes run"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
    assert "interrupted: every process the demo started has been stopped" in out
    assert processes_mentioning(str(run_dir)) == []
