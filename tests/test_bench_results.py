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
    results = (ROOT / "bench/RESULTS.md").read_text()
    for name, s in data["sets"].items():
        rows = [row for row in results.splitlines() if row.startswith(f"| {name} | {s['folds']} folds")]
        labels = {row.split(" | ")[2] for row in rows}
        assert {"**deployed int8**", "deployed fp32", "majority class", *s["references"]} <= labels, name
        assert f"{s['deployed_int8']['accuracy']:.3f}" in next(r for r in rows if "deployed int8" in r)
        if "deployed_int8_beats_only" in s:  # a beat-only device's model, beside its own references
            beats = {row.split(" | ")[2]: row for row in rows if ", beats only |" in row}
            assert set(beats) == {"**deployed int8**", *s["references_beats_only"]}, name
            assert f"{s['deployed_int8_beats_only']['accuracy']:.3f}" in beats["**deployed int8**"]
        # the README: one row a set, the deployed model beside the best reference no oracle statistics feed
        (row,) = [row for row in readme.splitlines() if row.startswith(f"| {name} | {s['folds']} folds")]
        fair = {r: e for r, e in s["references"].items() if not r.endswith("-oracle")}
        best = max(fair, key=lambda r: (fair[r]["macro_f1"], fair[r]["accuracy"]))
        int8 = s["deployed_int8"]
        assert f"| {int8['accuracy']:.3f} / {int8['macro_f1']:.3f} | {best}: " in row, row
        assert row.endswith(f"| {s['majority']['accuracy']:.3f} |")


def test_a_readme_without_the_markers_is_refused_and_left_alone(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "README.md").write_text("# no table here\n")
    done = render(tmp_path)
    assert done.returncode != 0 and "realdata:begin" in done.stderr
    assert (tmp_path / "README.md").read_text() == "# no table here\n"


def test_a_cross_section_is_rendered_per_corpus_and_training(tmp_path: Path) -> None:
    def entry(acc: float) -> dict:
        return {"accuracy": acc, "macro_f1": acc - 0.1, "sd": {"accuracy": 0.01, "macro_f1": 0.02}}

    def part(corpora: list[str], acc: float) -> dict:
        return {
            "corpora": corpora,
            "deployed_int8": entry(acc),
            "deployed_fp32": entry(acc + 0.001),
            "majority": entry(0.4),
            "references": {"svm": entry(acc - 0.05)},
        }

    one = {
        "unit": "utterance",
        "folds": 2,
        "subjects": 4,
        "deployed_int8": entry(0.7),
        "deployed_fp32": entry(0.7),
        "majority": entry(0.4),
        "references": {"svm": entry(0.6)},
    }
    cross = {
        "a": {
            "folds": 2,
            "subjects": 4,
            "seconds": 1.0,
            "trained_on_others": part(["b"], 0.555),
            "trained_on_all": part(["a", "b"], 0.777),
        },
        "b": {
            "folds": 3,
            "subjects": 6,
            "seconds": 1.0,
            "trained_on_others": part(["a"], 0.444),
            "trained_on_all": part(["a", "b"], 0.666),
        },
    }
    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    published = tmp_path / "bench/published/realdata.json"

    def rendered(data: dict) -> list[str]:
        published.write_text(json.dumps({"seconds": 60.0, **data}))
        done = render(tmp_path)
        assert done.returncode == 0, done.stderr
        return (tmp_path / "bench/RESULTS.md").read_text().splitlines()

    table = rendered({"sets": {"a": one, "b": one}, "cross": cross})
    rows = {tuple(r.split(" | ")[:3]): r for r in table if r.startswith("| a, ") or r.startswith("| b, ")}
    assert len(rows) == 2 * 2 * 4, "per corpus and training: int8, fp32, the reference, majority"
    assert (
        "0.777 ± 0.010 | 0.677 ± 0.020"
        in rows[("| a, 2 folds by person, 4 persons", "a + b", "**deployed int8**")]
    )
    assert "0.444 ± 0.010" in rows[("| b, 3 folds by person, 6 persons", "a", "**deployed int8**")]
    assert "0.394" in rows[("| b, 3 folds by person, 6 persons", "a", "svm")]
    assert not [r for r in rendered({"sets": {"a": one}}) if "trained on" in r]


def test_the_edge_section_shows_each_figure_beside_its_budget_and_what_the_figure_includes(
    tmp_path: Path,
) -> None:
    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    modality = {
        "preprocess_ms_p50": 1.5,
        "preprocess_ms_p99": 3.25,
        "inference_ms_p50": 0.125,
        "inference_ms_p99": 0.5,
        "bare_ort_ms_p50": 0.12,
        "overhead_ratio": 1.0417,
        "windows": 200,
    }
    edge = {
        "models": "the signed bundles in models/",
        "budget": {"cpu_percent_of_core": 5.0, "rss_mb": 150.0, "overhead_ratio": 1.1},
        "modalities": {
            "eeg": modality,
            "image": {**modality, "overhead_ratio": 1.0625},
            "speech": {**modality, "wearer_baseline_ms_p50": 0.0576},
        },
        "spool": {"frames_per_s": 12345},
        "realtime": {
            "source": "replay:DIR of a recording",
            "cpu_percent_of_core": 4.12,
            "rss_mb": 140.5,
            "seconds": 60.0,
            "warmup_seconds": 65.0,
        },
        "budget_met": True,
    }
    (tmp_path / "bench/published/edge.json").write_text(json.dumps(edge))
    done = render(tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "bench/RESULTS.md").read_text()
    section = text.split("## edge", 1)[1].split("\n## ", 1)[0]
    assert "| 4.12 | ≤ 5.0 |" in section and "| 140.5 | ≤ 150.0 |" in section
    assert "| 1.0625 | ≤ 1.1 |" in section, "the worst modality's overhead stands against the budget"
    assert "Source: replay:DIR of a recording." in section and "65.0 s warm-up" in section
    assert "| image | - | 1.5 / 3.25 | - | 0.125 / 0.5 | 0.12 | 1.0625 | 200 |" in section
    assert "| speech | - | 1.5 / 3.25 | 0.0576 | 0.125 / 0.5 | 0.12 | 1.0417 | 200 |" in section
    assert section.count("replay:DIR of a recording") == 1, "the source is said once"
    assert "| `spool.frames_per_s` | 12345 |" in section and "| `budget_met` | True |" in section


def test_runs_of_other_seeds_are_shown_per_seed_with_their_mean(tmp_path: Path) -> None:
    def entry(acc: float) -> dict:
        return {"accuracy": acc, "macro_f1": acc - 0.1}

    def run(seed: int, deployed: float, reference: float) -> dict:
        s = {
            "unit": "utterance",
            "folds": 2,
            "subjects": 4,
            "deployed_int8": entry(deployed),
            "deployed_fp32": entry(deployed),
            "majority": entry(0.4),
            "references": {"svm-running": entry(reference), "svm-oracle": entry(0.9)},
        }
        return {"seconds": 60.0, "seed": seed, "sets": {"a": s}}

    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    published = tmp_path / "bench/published"
    for old in published.glob("realdata-seed*.json"):
        old.unlink()
    (published / "realdata.json").write_text(json.dumps(run(7, 0.75, 0.65)))
    assert render(tmp_path).returncode == 0
    assert "Seeds " not in (tmp_path / "bench/RESULTS.md").read_text(), "one run: nothing to compare"
    assert "Mean of the runs" not in (tmp_path / "README.md").read_text()
    (published / "realdata-seed8.json").write_text(json.dumps(run(8, 0.71, 0.61)))
    done = render(tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "bench/RESULTS.md").read_text()
    assert "Seeds 7, 8 " in text
    assert "| a | 7 | 0.750 / 0.650 | svm-running: 0.650 / 0.550 |" in text, "the oracle is no reference"
    assert "| a | 8 | 0.710 / 0.610 | svm-running: 0.610 / 0.510 |" in text
    assert "| a | mean of 2 | 0.730 / 0.630 | 0.630 / 0.530 |" in text
    readme = (tmp_path / "README.md").read_text()
    assert "Seeds " not in readme, "the README keeps one row a set"
    assert (
        "Mean of the runs at seeds 7, 8, deployed int8 against the best reference: "
        "a 0.730 / 0.630 against 0.630 / 0.530." in readme
    ), "and gives each model's mean over the seeds"
