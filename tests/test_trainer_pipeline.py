"""A fast pipeline run on a tiny synthetic set: every report field, signed bundles the edge can load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from mmer_core import bundle
from mmer_core.modalities import MODALITIES, SPECS
from mmer_core.taxonomy import QUADRANTS
from trainer.data import Dataset
from trainer.evaluate import Evaluation
from trainer.pipeline import ModalityRun, choose, fusion_report

METHODS = ("max", "percentile", "max-percentile", "entropy")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline")
    proc = subprocess.run(
        [sys.executable, "-m", "mmer_cli", "trainer", "pipeline", "--fast", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[fusion] accuracy" in proc.stdout, "per-step log lines are printed"
    progress = ("[", "    epoch", "made a signing key pair", "report written")
    noise = [line for line in proc.stdout.splitlines() if line.strip() and not line.startswith(progress)]
    assert not noise, f"only progress lines on stdout, got: {noise[:5]}"
    for marker in (
        "Saved artifact",
        "fully_quantize",
        "Collecting tensor data",
        "Converting models",
        "UserWarning",
    ):
        assert marker not in proc.stdout + proc.stderr, f"tool chatter {marker!r} reached the console"
    return out


# INT8 bundles are at least this many times smaller than fp32. Speech's linear model keeps the float input
# standardisation of its 6,373 openSMILE functionals (51 KB) beside 25 KB of int8 weights.
# speech: the standardisation constants of the columns each expert (and the gate) reads stay float
# image: a face kernel model's support vectors stay float (trainer.face_kernel); its PCA is int8
MIN_COMPRESSION = {"hr": 2.5, "eeg": 2.5, "speech": 1.5, "image": 2.0}


@pytest.mark.slow
def test_report_has_every_contract_field(run: Path) -> None:
    report = json.loads((run / "report.json").read_text())
    for m in MODALITIES:
        r = report[m]
        assert 0 <= r["fp32"]["accuracy"] <= 1 and r["fp32"]["bytes"] > 0
        # The class-aware subject split gives the test subjects training's classes; a label-blind
        # one once tested image only on classes its 3-epoch model never predicted: 0.000.
        assert r["fp32"]["accuracy"] > 0.2 and r["methods"][r["selected"]]["accuracy"] > 0.2, m
        for method in METHODS:
            e = r["methods"][method]
            for key in ("accuracy", "macro_f1", "bytes", "compression", "efficiency", "latency_ms_p50"):
                assert key in e, (m, method, key)
            assert e["compression"] == pytest.approx(r["fp32"]["bytes"] / e["bytes"], rel=1e-3)
            assert e["compression"] > MIN_COMPRESSION[m], (m, method)
        assert r["selected"] in METHODS
        shipped = r["shipped"]
        assert shipped["windows"] == sum(r["windows"].values()), "the shipped model learned from every person"
        assert shipped["people"] >= 3, m
        # a face kernel model is fitted, not trained for epochs (trainer.face_recipe)
        assert shipped["epochs"] >= 1 or r["fp32"].get("face_model") == "kernel", m
        assert shipped["int8_fp32_agreement"] > 0.8, m
        # standardised inside the speech experts and gate, after the face kernel model's features: no fair
        # full-integer peer
        if m == "speech" or r["fp32"].get("face_model") == "kernel":
            assert "tflite_int8" not in r
            continue
        for key in ("accuracy", "bytes", "latency_ms_p50"):
            assert key in r["tflite_int8"], (m, key)
    fusion = report["fusion"]
    assert {"accuracy", "best_single_accuracy", "without"} <= set(fusion)
    assert set(fusion["without"]) == set(MODALITIES)
    assert report["split"] == "subject-independent"
    assert report["class_weights"] == "none"
    assert report["seconds"] > 0
    assert (run / "report.md").read_text().startswith("# mmer trainer report")
    for png in ("confusion.png", "accuracy_vs_compression.png", "latency.png"):
        assert (run / png).stat().st_size > 1000


@pytest.mark.slow
def test_bundles_verify_and_serve(run: Path) -> None:
    public = bundle.load_public_key(run / "keys" / bundle.PUBLIC_KEY_FILE)
    for m in MODALITIES:
        b = bundle.read_bundle(run / m, public)
        assert b.manifest.modality == m and b.manifest.version == 1
        assert tuple(b.manifest.taxonomy.labels) == QUADRANTS.labels
        assert tuple(b.manifest.input.shape) == SPECS[m].input_shape
        assert {f.role for f in b.manifest.files} == {"model", "ort", "samples"}
        samples = np.load(b.file("samples"))
        sess = ort.InferenceSession(str(b.file("model")))
        probs = sess.run(["probs"], {b.manifest.input.name: samples["x"]})[0]
        assert np.allclose(probs, samples["probs"], atol=1e-5), "smoke-test samples match the model"
        ort.InferenceSession(str(b.file("ort")))  # the compiled model loads too
        shipped = run / "work" / m / "shipped.int8.onnx"
        assert b.file("model").read_bytes() == shipped.read_bytes(), "the model trained on every person"
        assert b.manifest.metrics.bytes == shipped.stat().st_size, "the manifest describes the file it ships"
        assert b.manifest.metrics.compression > MIN_COMPRESSION[m]


def _ev(accuracy: float, size: int) -> Evaluation:
    return Evaluation(accuracy, accuracy, [], size, 1.0, 1.0, 1.0, np.empty(0))


def test_choice_is_best_efficiency_within_the_allowed_drop() -> None:
    fp32 = _ev(0.80, 4000)
    methods = {"max": _ev(0.795, 1000), "percentile": _ev(0.80, 1100), "entropy": _ev(0.70, 800)}
    assert choose(fp32, methods, 1.0) == "max", "entropy is smaller but drops 10 points"
    assert choose(fp32, methods, 20.0) == "entropy"
    assert choose(fp32, {"max": _ev(0.5, 1000), "percentile": _ev(0.6, 1000)}, 1.0) == "percentile"


def _run(modality: str, t_end: np.ndarray, y: np.ndarray, probs: np.ndarray) -> ModalityRun:
    test = Dataset(modality, np.zeros((len(y), 1)), y, np.full(len(y), "s1"), t_end, "generated")
    return ModalityRun({}, test, probs, probs, y)


def test_fusion_report_counts_an_instant_a_modality_misses_as_no_answer() -> None:
    """Four instants (eeg's windows at 1-4 s), all class 0. eeg answers every one rightly; hr's windows end at
    1, 2, 10 and 11 s, so it answers the first two instants only, rightly. hr scores 2/4 (not 4/4 as if a
    missing score were a guess of class 0); fusion, which has eeg everywhere, scores 4/4."""
    y = np.zeros(4, dtype=int)
    right = np.tile([0.7, 0.1, 0.1, 0.1], (4, 1))
    runs = {
        "eeg": _run("eeg", np.arange(1.0, 5.0), y, right),
        "hr": _run("hr", np.array([1.0, 2.0, 10.0, 11.0]), y, right),
    }
    report = fusion_report(runs)
    assert report["single"] == {"eeg": 1.0, "hr": 0.5}
    assert report["coverage"] == {"eeg": 1.0, "hr": 0.5}
    assert report["accuracy"] == 1.0 and report["best_single_accuracy"] == 1.0
