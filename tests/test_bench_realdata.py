"""bench/realdata.py runs its subject-wise cross-validation on the shared real data and writes sane JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    not (DATA / "stress-predict-e4").is_dir(), reason=f"{DATA}/stress-predict-e4 is absent (shared data)"
)
def test_realdata_bench_cross_validates_by_subject(tmp_path: Path) -> None:
    out = tmp_path / "realdata.json"
    proc = subprocess.run(
        [sys.executable, "bench/realdata.py", "--only", "hr", "--max-folds", "2", "--epochs", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    hr = json.loads(out.read_text())["hr"]
    assert hr["split"] == "2-fold by subject" and hr["subjects"] == 16
    held_out = [s for f in hr["folds"] for s in f["subjects"]]
    assert sorted(held_out) == sorted(set(held_out)) and len(held_out) == 16, (
        "every subject tested exactly once"
    )
    assert sum(f["windows"] for f in hr["folds"]) == hr["windows"] == sum(hr["class_counts"].values())
    assert hr["wearer_baseline_windows"] == 300
    assert sum(f["windows_wearer_baseline"] for f in hr["folds"]) == hr["windows"] - 16 * 299, (
        "the model with a wearer baseline is not scored on each subject's 299 calibration windows"
    )
    names = (
        "model",
        "majority",
        "logistic",
        "logistic_per_subject_baseline",
        "model_wearer_baseline",
        "logistic_wearer_baseline",
        "model_past_calibration",
        "majority_past_calibration",
    )
    for name in names:
        for metric in ("accuracy", "macro_f1"):
            s = hr["summary"][name][metric]
            assert 0.0 <= s["mean"] <= 1.0 and s["sd"] >= 0.0, (name, metric)
    assert hr["summary"]["majority"]["accuracy"]["mean"] > 0.5, "baseline windows outnumber stress windows"


def test_realdata_bench_skips_absent_data(tmp_path: Path) -> None:
    out = tmp_path / "realdata.json"
    proc = subprocess.run(
        [sys.executable, "bench/realdata.py", "--data", str(tmp_path / "nowhere"), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result) == {"hr", "speech"}
    assert all("is absent" in r["skipped"] for r in result.values())
