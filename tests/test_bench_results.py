"""bench/RESULTS.md and the README's real-data table are what bench/results.py renders from the published JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench/results.py", *args], cwd=root, capture_output=True, text=True, timeout=60
    )


def test_the_documents_match_the_published_json() -> None:
    done = render(ROOT, "--check")
    assert done.returncode == 0, done.stderr


def test_every_set_shows_the_deployed_model_beside_its_references_and_the_majority() -> None:
    data = json.loads((ROOT / "bench/published/realdata.json").read_text())
    readme = (ROOT / "README.md").read_text()
    for name, s in data["sets"].items():
        rows = [row for row in readme.splitlines() if row.startswith(f"| {name} | {s['folds']} folds")]
        labels = {row.split(" | ")[2] for row in rows}
        assert {"**deployed int8**", "deployed fp32", "majority class", *s["references"]} <= labels, name
        assert f"{s['deployed_int8']['accuracy']:.3f}" in next(r for r in rows if "deployed int8" in r)


def test_a_readme_without_the_markers_is_refused_and_left_alone(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "README.md").write_text("# no table here\n")
    done = render(tmp_path)
    assert done.returncode != 0 and "realdata:begin" in done.stderr
    assert (tmp_path / "README.md").read_text() == "# no table here\n"
