"""`mmer demo` end to end on tiny signed models: real Redis, coordinator, nodes, push and the final figures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from edge_models import make_bundle

from mmer_core.modalities import MODALITIES

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_demo_streams_pushes_and_reports_every_figure(tmp_path: Path) -> None:
    models = tmp_path / "models"
    for i, modality in enumerate(MODALITIES):
        make_bundle(models / modality, models / "keys", modality, version=1, seed=i)
    out = tmp_path / "demo.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mmer_core.cli", "demo", "--models", str(models), "--seconds", "10",
         "--devices", "2", "--http-port", "0", "--run-dir", str(tmp_path / "run"), "--json", str(out)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "dashboard: http://127.0.0.1:" in proc.stdout
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
