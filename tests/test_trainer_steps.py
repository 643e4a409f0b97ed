"""The single steps chained through a work directory: train -> quantize -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmer_cli.dispatch import main


@pytest.mark.slow
def test_train_quantize_evaluate_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "hr"
    assert main(["trainer", "train", "--modality", "hr", "--work", str(work), "--fast"]) == 0
    assert (work / "model.fp32.onnx").is_file() and (work / "split.npz").is_file()
    for method in ("max", "max-percentile"):
        assert main(["trainer", "quantize", "--work", str(work), "--method", method]) == 0
    capsys.readouterr()
    assert main(["trainer", "evaluate", "--work", str(work)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "subject-independent" and set(result["methods"]) == {"max", "max-percentile"}
    windows = sum(map(sum, result["fp32"]["confusion"]))  # a --fast split: a dozen test windows
    for figures in result["methods"].values():
        assert figures["compression"] > 2.5
        assert sum(map(sum, figures["confusion"])) == windows
        # int8 within 5 points of fp32, or one window where a window is worth more
        assert abs(figures["accuracy"] - result["fp32"]["accuracy"]) <= max(0.05, 1 / windows + 1e-9)
    assert json.loads((work / "evaluation.json").read_text()) == result


def test_steps_refuse_a_work_directory_without_a_trained_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trainer", "evaluate", "--work", str(tmp_path)]) == 2
    assert "run `mmer trainer train` into it first" in capsys.readouterr().err
    assert main(["trainer", "quantize", "--work", str(tmp_path), "--method", "kl"]) == 2
    assert "unknown method 'kl'" in capsys.readouterr().err
