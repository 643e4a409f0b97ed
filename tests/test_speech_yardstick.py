"""The speech yardstick end to end on a tiny generated corpus: `bench/realdata.py --quick` writes the
report's layout with folds by speaker, and `mmer trainer evaluate` scores a trained bundle as the edge would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from mmer_core.bundle import PUBLIC_KEY_FILE, load_public_key, read_bundle
from mmer_core.wearer_baseline import LEVELS_PARAM
from testkit.speech_audio import crema_corpus, ravdess_corpus

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "ravdess-speech-16k"
ACTORS, PER_CLASS = 4, 3

pytestmark = pytest.mark.slow


MMER = str(Path(sys.executable).parent / "mmer")


def run(args: list[str], cache: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """A command (`mmer ...` or `-m module ...`) with feature caching in `cache` and single-threaded BLAS."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}
    command = [MMER, *args[1:]] if args[0] == "mmer" else [sys.executable, *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "tiny-ravdess"
    ravdess_corpus(root, ACTORS, PER_CLASS)
    return root


def check_entry(entry: dict, folds: int, subjects: int, units: int) -> None:
    assert entry["unit"] == "utterance" and entry["folds"] == folds and entry["subjects"] == subjects
    assert entry["units"] == units and entry["units_without_speech"] == 0
    names = {"svm", "svm-speaker-running", "svm-speaker-oracle"}
    assert set(entry["references"]) == names
    for row in [
        entry["majority"],
        entry["deployed_int8"],
        entry["deployed_fp32"],
        *entry["references"].values(),
    ]:
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["macro_f1"] <= 1.0
        assert len(row["per_fold"]) == folds and set(row["sd"]) == {"accuracy", "macro_f1", "uar"}


def test_bench_quick_run_writes_the_yardstick_layout(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "realdata.json"
    proc = run(
        ["-m", "bench.realdata", "--json", str(out), "--data", f"speech:{corpus}", "--folds", "2", "--quick"],
        tmp_path / "cache",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result) == {"seconds", "cpu_seconds", "seed", "sets"} and list(result["sets"]) == [
        "tiny-ravdess"
    ]
    assert result["seed"] == 7, "the run says which seed ordered, split and trained it (the default)"
    check_entry(result["sets"]["tiny-ravdess"], 2, ACTORS, ACTORS * 4 * PER_CLASS)
    assert "tiny-ravdess (2 folds by person" in proc.stdout


def test_two_corpora_get_a_cross_section_beside_their_own_sets(corpus: Path, tmp_path: Path) -> None:
    crema = tmp_path / "tiny-crema"
    crema_corpus(crema, actors=3, per_class=3)
    out, cache = tmp_path / "realdata.json", tmp_path / "cache"
    proc = run(
        [
            "-m",
            "bench.realdata",
            "--json",
            str(out),
            "--data",
            f"speech:{corpus}",
            "--data",
            f"speech:{crema}",
            "--folds",
            "2",
            "--quick",
        ],
        cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result) == {
        "seconds",
        "cpu_seconds",
        "seed",
        "sets",
        "cross",
        "cross_seconds",
        "cross_cpu_seconds",
    }
    assert (
        0 < result["cross_seconds"] < result["seconds"]
        and 0 < result["cross_cpu_seconds"] < result["cpu_seconds"]
    )
    check_entry(result["sets"]["tiny-ravdess"], 2, ACTORS, ACTORS * 4 * PER_CLASS)
    check_entry(result["sets"]["tiny-crema"], 2, 3, 3 * 4 * 3)
    assert set(result["cross"]) == {"tiny-ravdess", "tiny-crema"}
    for name, other, subjects in (("tiny-ravdess", "tiny-crema", ACTORS), ("tiny-crema", "tiny-ravdess", 3)):
        entry = result["cross"][name]
        assert entry["folds"] == 2 and entry["subjects"] == subjects
        assert entry["trained_on_others"]["corpora"] == [other]
        assert entry["trained_on_all"]["corpora"] == ["tiny-ravdess", "tiny-crema"]
        for part in (entry["trained_on_others"], entry["trained_on_all"]):
            assert set(part["references"]) == {"svm", "svm-speaker-running", "svm-speaker-oracle"}
            for row in [
                part["majority"],
                part["deployed_int8"],
                part["deployed_fp32"],
                *part["references"].values(),
            ]:
                assert 0.0 <= row["accuracy"] <= 1.0 and len(row["per_fold"]) == 2
    assert "tiny-crema, 2 folds by person, trained on tiny-ravdess:" in proc.stdout
    cached = list((cache / "mmer" / "speech").glob("*.npz"))
    assert len(cached) == ACTORS * 4 * PER_CLASS + 3 * 4 * 3, (
        "each file's utterances cached once, in one place"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("speech", "expected KIND:PATH"),
        ("voice:/tmp", "unknown kind 'voice'"),
        ("speech:/no/such/dir", "does not exist"),
    ],
)
def test_bench_refuses_bad_data(data: str, message: str, tmp_path: Path) -> None:
    proc = run(["-m", "bench.realdata", "--json", str(tmp_path / "x.json"), "--data", data], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and not (tmp_path / "x.json").exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (shared real data)")
def test_bench_quick_run_on_real_actors(tmp_path: Path) -> None:
    subset = tmp_path / "ravdess-4"
    for actor in ("Actor_01", "Actor_02", "Actor_03", "Actor_04"):
        (subset / actor).mkdir(parents=True)
        for wav in sorted((SHARED / actor).glob("*.wav")):
            (subset / actor / wav.name).symlink_to(wav)
    out = tmp_path / "realdata.json"
    proc = run(
        ["-m", "bench.realdata", "--json", str(out), "--data", f"speech:{subset}", "--folds", "2", "--quick"],
        Path.home() / ".cache" / "mmer",
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    entry = json.loads(out.read_text())["sets"]["ravdess-4"]
    check_entry(entry, 2, 4, 240)
    assert entry["majority"]["accuracy"] < entry["references"]["svm-speaker-running"]["accuracy"]


def test_evaluate_scores_a_trained_bundle_as_the_edge_would(corpus: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    cache = tmp_path / "cache"
    proc = run(
        [
            "mmer",
            "trainer",
            "pipeline",
            "--data",
            f"speech:{corpus}",
            "--out",
            str(models),
            "--epochs",
            "5",
            "--methods",
            "max",
            "--no-tflite",
            "--wearer-baseline",
            "2",
        ],
        cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = read_bundle(models / "speech", load_public_key(models / "keys" / PUBLIC_KEY_FILE)).manifest
    assert manifest.preprocessing.params[LEVELS_PARAM] == 1.0, "relative functionals, then absolute ones"
    session = ort.InferenceSession(str(models / "speech" / "model.int8.onnx"))
    assert session.get_inputs()[0].shape[1] == 2 * 6373
    proc = run(
        [
            "mmer",
            "trainer",
            "evaluate",
            "--bundle",
            str(models / "speech"),
            "--data",
            f"speech:{corpus}",
            "--json",
        ],
        cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    scored = ACTORS * (4 * PER_CLASS - 1)  # each speaker's first utterance only warms the baseline up
    assert report["unit"] == "utterance" and report["n"] == scored and report["persons"] == ACTORS
    assert sum(map(sum, report["confusion"])) == scored and sum(report["counts"].values()) == scored
    assert report["majority"] == pytest.approx(max(report["counts"].values()) / scored, abs=1e-3)
    assert 0.0 <= report["accuracy"] <= 1.0 and set(report["recall"]) == {"happy", "angry", "sad", "calm"}
    text = run(
        ["mmer", "trainer", "evaluate", "--bundle", str(models / "speech"), "--data", f"speech:{corpus}"],
        cache,
    )
    assert text.returncode == 0 and "majority-class accuracy" in text.stdout and "confusion" in text.stdout

    (models / "speech" / "model.int8.onnx").write_bytes(b"tampered")
    tampered = run(
        ["mmer", "trainer", "evaluate", "--bundle", str(models / "speech"), "--data", f"speech:{corpus}"],
        cache,
    )
    assert tampered.returncode == 1 and "evaluate:" in tampered.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "needs --data"),
        (["--data", "speech"], "expected KIND:PATH"),
        (["--data", "speech:/no/such"], "not a directory"),
    ],
)
def test_evaluate_refuses_bad_arguments(extra: list[str], message: str, tmp_path: Path) -> None:
    proc = run(["mmer", "trainer", "evaluate", "--bundle", str(tmp_path), *extra], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr


def test_bench_refuses_no_workers(tmp_path: Path) -> None:
    proc = run(
        [
            "-m",
            "bench.realdata",
            "--json",
            str(tmp_path / "x.json"),
            "--data",
            f"speech:{tmp_path}",
            "--workers",
            "0",
        ],
        tmp_path,
    )
    assert proc.returncode == 2 and "--workers: at least 1, got 0" in proc.stderr
    assert not (tmp_path / "x.json").exists()
