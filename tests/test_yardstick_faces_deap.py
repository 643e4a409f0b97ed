"""The faces and DEAP yardsticks on tiny generated sets (quick: figures mean nothing, the report's shape and
folds do), and bundles the pipeline trains from such sets scored as the edge would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from testkit.deap_files import write_deap_folder
from testkit.face_folders import write_face_folder
from trainer.yardstick.options import YardstickOptions

pytest.importorskip("tensorflow", reason="the yardsticks train the deployed model (the 'trainer' extra)")
ROOT = Path(__file__).resolve().parents[1]


def check_entry(entry: dict, unit: str, folds: int, subjects: int) -> None:
    assert (entry["unit"], entry["folds"], entry["subjects"]) == (unit, folds, subjects)
    for name in ("majority", "deployed_int8", "deployed_fp32", *entry["references"]):
        scores = entry[name] if name in entry else entry["references"][name]
        assert len(scores["per_fold"]) == folds
        for metric in ("accuracy", "macro_f1", "uar"):
            assert 0.0 <= scores[metric] <= 1.0 and metric in scores["sd"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return write_face_folder(tmp_path_factory.mktemp("faces"), persons=4, per_label=3, seed=1)


@pytest.fixture(scope="module")
def deap(tmp_path_factory) -> Path:
    return write_deap_folder(tmp_path_factory.mktemp("deap"), subjects=3, trials_per_label=1, trial_s=20.0)


@pytest.mark.slow
def test_faces_yardstick_reports_every_classifier_on_folds_by_person(faces: Path) -> None:
    from trainer.yardstick.faces import yardstick

    entry = yardstick(faces, YardstickOptions(folds=2, quick=True))
    check_entry(entry, "frame", 2, 4)
    names = {"pca-svm-pixels", "pca-svm-hog", "pca-svm-pixels+hog", "pca-svm-pixels+hog-person-oracle"}
    names.add("pca-svm-pixels+hog-person-running")
    assert set(entry["references"]) == names
    assert entry["units"] == sum(entry["class_counts"].values()) <= 4 * 4 * 3
    assert "without a detected face left out" in entry["data"]
    # the share of folds whose recipe shipped the kernel model rather than the CNN (trainer.face_recipe)
    shares = [f["kernel_model"] for f in entry["deployed_int8"]["per_fold"]]
    assert set(shares) <= {0.0, 1.0} and entry["deployed_int8"]["kernel_model"] == pytest.approx(
        np.mean(shares)
    )


def test_the_faces_running_reference_knows_each_person_only_up_to_each_image() -> None:
    """A person's first image met is all zeros (its own mean), the last is relative to the mean of all of the
    person's images (as the -oracle one), and another person's images change nothing."""
    from trainer.yardstick.faces import per_person_oracle, per_person_running

    rng = np.random.default_rng(0)
    features = rng.normal(size=(12, 3)) + np.repeat([[0.0], [5.0]], 6, axis=0)
    persons = np.repeat(["a", "b"], 6)
    out = per_person_running(features, persons, seed=3)
    order = np.random.default_rng(3).permutation(12)
    met_a = [i for i in order if persons[i] == "a"]
    np.testing.assert_allclose(out[met_a[0]], 0.0, atol=1e-12)
    np.testing.assert_allclose(out[met_a[-1]], per_person_oracle(features, persons)[met_a[-1]])
    np.testing.assert_allclose(out[met_a[1]], features[met_a[1]] - features[met_a[:2]].mean(axis=0))
    changed = features.copy()
    changed[6:] += 100.0
    np.testing.assert_allclose(per_person_running(changed, persons, seed=3)[:6], out[:6])


@pytest.mark.slow
def test_deap_yardstick_reports_every_classifier_on_folds_by_subject(deap: Path) -> None:
    from trainer.yardstick.deap import yardstick

    entry = yardstick(deap, YardstickOptions(folds=3, quick=True))
    check_entry(entry, "window", 3, 3)
    assert {"svm", "rf", "svm-subject-running", "rf-subject-running", "svm-subject-oracle"} <= set(
        entry["references"]
    )
    # 4 trials of 20 s: 40 windows of 2 s per subject, the first 29 the wearer baseline's calibration
    assert entry["units"] == 3 * (40 - entry["warmup_windows_per_subject"] + 1)


def pipeline(kind: str, folder: Path, out: Path) -> None:
    data = f"{kind}:{folder}"
    cmd = [sys.executable, "-m", "mmer_cli", "trainer", "pipeline", "--data", data, "--out", str(out)]
    cmd += ["--fast", "--methods", "max", "--no-tflite"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_a_faces_bundle_from_the_pipeline_scores_like_the_edge(faces: Path, tmp_path: Path) -> None:
    from trainer.yardstick.faces import score_bundle

    pipeline("faces", faces, tmp_path)
    report = score_bundle(tmp_path / "image", faces).report()
    assert report["unit"] == "frame" and report["persons"] == 4
    assert (
        report["n"] == sum(report["counts"].values()) and np.array(report["confusion"]).sum() == report["n"]
    )


@pytest.mark.slow
def test_a_deap_bundle_from_the_pipeline_keeps_its_wearer_baseline(deap: Path, tmp_path: Path) -> None:
    from trainer.yardstick.deap import score_bundle

    pipeline("deap", deap, tmp_path)
    report = score_bundle(tmp_path / "eeg", deap).report()
    # 40 windows a subject; the baseline takes each window in before scoring it, so the 30th is the first scored
    assert report["unit"] == "window" and report["n"] == 3 * (40 - 29), (
        "the calibration windows are not scored"
    )
    from trainer.yardstick.faces import score_bundle as score_faces

    with pytest.raises(ValueError, match="a eeg bundle, not image"):
        score_faces(tmp_path / "eeg", deap)
