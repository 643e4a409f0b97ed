"""The retraining service promotes a candidate that is at least as good and refuses a worse one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmer_core import bundle
from trainer import data as data_mod
from trainer.pipeline import PipelineOptions
from trainer.serve import data_fingerprint, retrain_once, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hr_data() -> data_mod.Dataset:
    return data_mod.synthetic("hr", data_mod.SyntheticPlan(n_subjects=6, seconds=60.0, seed=3))


def _options(out: Path) -> PipelineOptions:
    key = out / "keys" / bundle.PRIVATE_KEY_FILE
    if not key.exists():
        bundle.generate_keypair(key.parent)
    return PipelineOptions(
        out=out,
        key=key,
        modalities=["hr"],
        methods=["max"],
        epochs=4,
        calibration_windows=32,
        tflite=False,
        seed=3,
    )


def test_serve_promotes_then_refuses_a_worse_model(tmp_path: Path, hr_data: data_mod.Dataset) -> None:
    options = _options(tmp_path)
    first = retrain_once("hr", hr_data, options, log=lambda s: None)
    assert first.promoted and first.serving_accuracy is None and first.version == 1
    serving = bundle.read_bundle(
        tmp_path / "hr", bundle.load_public_key(tmp_path / "keys" / bundle.PUBLIC_KEY_FILE)
    )
    served_bytes = serving.file("model").read_bytes()

    # New data whose training labels are scrambled (held-out test subjects keep their true labels).
    parts = data_mod.split(hr_data, options.split, options.seed)
    test_subjects = set(parts.test.subjects)
    y = hr_data.y.copy()
    train_rows = ~np.isin(hr_data.subjects, list(test_subjects))
    y[train_rows] = (y[train_rows] + 1) % 4
    bad = data_mod.Dataset("hr", hr_data.x, y, hr_data.subjects, hr_data.t_end, "scrambled labels")
    lines: list[str] = []
    second = retrain_once("hr", bad, options, log=lines.append)
    assert not second.promoted
    assert second.candidate_accuracy < second.serving_accuracy
    assert "kept serving model" in second.reason and second.reason in lines
    assert (tmp_path / "hr" / serving.file("model").name).read_bytes() == served_bytes  # untouched


def test_serve_loop_retrains_when_new_files_arrive(tmp_path: Path, hr_data: data_mod.Dataset) -> None:
    watch = tmp_path / "incoming"
    watch.mkdir()
    (watch / "rec1.csv").write_text("1\n")
    assert data_fingerprint(watch)[0] == 1
    lines: list[str] = []
    decisions = serve(
        "hr",
        lambda: hr_data,
        watch,
        _options(tmp_path / "models"),
        min_new_files=1,
        rounds=1,
        log=lines.append,
    )
    assert len(decisions) == 1 and decisions[0].promoted
    assert any("retraining (1 new files" in s for s in lines)


@pytest.mark.parametrize(
    ("data", "message"), [("synthetic", "serve needs KIND:DIR"), ("e4:/no/such/dir", "is not a directory")]
)
def test_serve_cli_refuses_data_it_cannot_watch(
    data: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmer_cli.dispatch import main

    assert main(["trainer", "serve", "--data", data, "--once"]) == 2
    assert message in capsys.readouterr().err
