"""`mmer demo` runs from the command line and writes sane figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_preview_demo_runs_and_reports_every_modality(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmer_cli",
            "demo",
            "--preview",
            "--seconds",
            "80",
            "--devices",
            "2",
            "--speed",
            "50",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "subject-1" in proc.stdout and "subject-2" in proc.stdout
    figures = json.loads(out.read_text())
    assert set(figures["modalities"]) == {"hr", "eeg", "speech", "image"}
    for name, m in figures["modalities"].items():
        assert m["windows"] > 0, name
        assert 0 < m["preprocess_ms_p50"] <= m["preprocess_ms_p99"], name
    assert figures["modalities"]["image"]["windows"] == 2 * 80 * 5
    assert figures["modalities"]["hr"]["windows"] == 2 * 5, "60 s wrist windows every 5 s from 60 s on"
