"""The e4 yardstick on a tiny --quick run, and a pipeline-trained bundle scored as the edge would, on small
session folders written in the E4's export layout (figures of such runs mean nothing; shapes and paths do)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmer_core.bundle import load_public_key, read_bundle
from mmer_core.modalities import HR_FEATURES
from testkit.e4_files import write_e4_session
from trainer.yardstick.e4 import score_bundle, yardstick
from trainer.yardstick.options import YardstickOptions

SESSION_S = 240


@pytest.fixture(scope="module")
def e4_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four wearers, each calm for the first half of the session and stressed (a faster heart) for the rest."""
    root = tmp_path_factory.mktemp("e4")
    rows = []
    for i in range(4):
        start = 1_700_000_000 + 10_000 * i
        write_e4_session(root / f"P{i}", start, 0.75 + 0.05 * i, SESSION_S)
        half = start + SESSION_S // 2
        rows += [f"P{i},{start},{half},baseline", f"P{i},{half},{start + SESSION_S},stress"]
    (root / "labels.csv").write_text("subject,start_unix_utc,end_unix_utc,label\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def one_worker(e4_set: Path) -> dict:
    """The quick two-fold entry, its folds run one after another in one worker."""
    return yardstick(e4_set, YardstickOptions(folds=2, quick=True, workers=1))


@pytest.mark.slow
def test_quick_yardstick_reports_every_classifier_on_the_same_folds(one_worker: dict) -> None:
    entry = one_worker
    assert entry["unit"] == "window" and entry["folds"] == 2 and entry["subjects"] == 4
    assert set(entry["references"]) == {"rf-stats", "rf-stats-wearer-running", "rf-stats-wearer-oracle"}
    assert set(entry["references_beats_only"]) == {"rf-stats", "rf-stats-wearer-running"}
    for beats_only in entry["references_beats_only"].values():
        assert len(beats_only["per_fold"]) == 2 and 0.0 <= beats_only["accuracy"] <= 1.0
    for name in ("majority", "deployed_int8", "deployed_fp32", "deployed_int8_beats_only"):
        assert len(entry[name]["per_fold"]) == 2 and 0.0 <= entry[name]["accuracy"] <= 1.0
    # each wearer: 37 windows (60 s every 5 s over 240 s), 11 across the change of label, 26 labelled of
    # which the first 3 calibrate (a 4-window warm-up: the 4th window is scored)
    assert entry["windows_scored"] == 4 * (26 - 3)


@pytest.mark.slow
def test_pipeline_trains_the_wrist_recipe_and_evaluate_scores_it_as_the_edge(
    e4_set: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmer_cli",
            "trainer",
            "pipeline",
            "--data",
            f"e4:{e4_set}",
            "--fast",
            "--no-tflite",
            "--methods",
            "max",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # 4 people: the split trains on 2 of them (2 members), the shipped model on all 4
    assert "trained the wrist recipe's committee of 2 " in proc.stdout
    assert "trained the wrist recipe's committee of 4 " in proc.stdout
    manifest = read_bundle(out / "hr", load_public_key(out / "keys" / "trainer.pub")).manifest
    params = manifest.preprocessing.params
    assert list(manifest.input.shape) == [2 * len(HR_FEATURES)], "relative features, then absolute ones"
    assert params["requires_eda"] == 1.0 and params["requires_temp"] == 1.0
    assert params["wearer_baseline_levels"] == 1.0 and params["wearer_baseline_windows"] > 0
    scored = score_bundle(out / "hr", e4_set)
    report = scored.report()
    assert report["unit"] == "window" and report["persons"] == 4
    assert report["n"] == 4 * (26 - int(params["wearer_baseline_windows"]) + 1)
    assert np.allclose(scored.probs.sum(axis=1), 1.0, atol=1e-3)


def test_score_bundle_refuses_a_bundle_of_another_modality(tmp_path: Path) -> None:
    from testkit.edge_models import make_bundle

    make_bundle(tmp_path / "eeg", tmp_path / "keys", "eeg", 1)
    with pytest.raises(ValueError, match="not hr"):
        score_bundle(tmp_path / "eeg", tmp_path)


@pytest.mark.slow
def test_folds_in_two_worker_processes_give_the_figures_of_one_process(
    e4_set: Path, one_worker: dict
) -> None:
    """Folds run in spawned single-threaded workers (trainer.yardstick.workers), each seeding its own
    trainings: two workers, each fold in a fresh process, give the same entry fold by fold as one worker
    that runs the folds one after another."""
    one = one_worker
    two = yardstick(e4_set, YardstickOptions(folds=2, quick=True, workers=2))
    for name in ("deployed_int8", "deployed_fp32", "deployed_int8_beats_only", "majority"):
        assert two[name]["per_fold"] == one[name]["per_fold"], name
    assert two["references"] == one["references"]
    assert two["references_beats_only"] == one["references_beats_only"]


def test_a_model_of_beats_only_has_a_hidden_layer_and_one_of_the_full_wrist_none() -> None:
    """Whichever way the recipe comes to have no skin channel (a beat-only device, or data without EDA and
    temperature), its model gets the beats-only hidden layer; a skin channel brings the softmax alone back."""
    from trainer.wrist_recipe import WRIST

    beats = np.zeros((3, len(HR_FEATURES)))
    skin = beats.copy()
    skin[:, [HR_FEATURES.index("eda_present"), HR_FEATURES.index("temp_present")]] = 1
    assert WRIST.hidden == () and WRIST.widths_beats_only
    assert WRIST.beats_only().hidden == WRIST.for_features(beats).hidden == WRIST.widths_beats_only
    assert WRIST.for_features(skin).hidden == ()
    assert f"after dense {WRIST.widths_beats_only}" in WRIST.beats_only().describe()["model"]
