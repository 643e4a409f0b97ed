"""`mmer trainer pipeline --wearer-baseline N`: feature models trained on wearer-relative features, with
manifests that make the edge calibrate before scoring them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_node.inference import load_runner
from edge_node.wearer_baselines import Calibrating, WearerBaselines
from mmer_cli import dispatch as cli
from mmer_core import bundle
from mmer_core.wearer_baseline import HORIZON_PARAM, WARMUP_PARAM, requested
from trainer.data import SyntheticPlan, synthetic

WARMUP = 5


@pytest.mark.slow
def test_feature_models_ask_the_edge_for_a_calibrated_baseline(tmp_path: Path) -> None:
    out = tmp_path / "models"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmer_cli",
            "trainer",
            "pipeline",
            "--fast",
            "--out",
            str(out),
            "--modalities",
            "hr",
            "--methods",
            "max",
            "--no-tflite",
            "--wearer-baseline",
            str(WARMUP),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[hr] relative to each wearer's baseline: 24 calibration windows not scored" in proc.stdout, (
        "6 subjects x (5 - 1) windows"
    )
    report = json.loads((out / "report.json").read_text())
    assert report["wearer_baseline"] == WARMUP
    assert f"wearer baseline: after {WARMUP} calibration windows" in (out / "report.md").read_text()
    public = bundle.load_public_key(out / "keys" / bundle.PUBLIC_KEY_FILE)
    runner = load_runner(out / "hr", public)
    params = runner.manifest.preprocessing.params
    assert requested(params) == (WARMUP, 3600) and params[WARMUP_PARAM] == WARMUP and HORIZON_PARAM in params
    assert "min_beats" in params, "the modality's own preprocessing parameters are still there"

    data = synthetic("hr", SyntheticPlan(n_subjects=1, seconds=120.0, seed=11))
    edge = WearerBaselines(None, str(data.subjects[0]))
    scored = []
    for x in data.x:
        edge.observe("hr", x)
        try:
            scored.append(runner.run(edge.model_input("hr", x, params)[None])[0])
        except Calibrating:
            assert not scored, "calibration comes first"
    assert len(scored) == len(data) - (WARMUP - 1)
    assert all(np.isclose(p.sum(), 1.0, atol=1e-3) for p in scored)


def test_a_negative_calibration_period_is_refused(tmp_path: Path, capsys) -> None:
    argv = ["trainer", "pipeline", "--fast", "--out", str(tmp_path), "--wearer-baseline", "-3"]
    assert cli.main(argv) == 2
    assert "--wearer-baseline: a number of windows >= 0, got -3" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()
