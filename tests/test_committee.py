"""The committee (trainer.committee): every person validates exactly one member, the committee's output is
the mean of its members', and it exports and quantizes as one model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trainer.committee import fit_committee, person_groups
from trainer.export import export_onnx
from trainer.models import build_model
from trainer.quantize import quantize


def test_every_person_validates_exactly_one_member() -> None:
    persons = np.repeat(np.array(["a", "b", "c", "d", "e", "f", "g"]), 3)
    groups = person_groups(persons, 4, seed=3)
    assert len(groups) == 4
    flat = np.concatenate(groups)
    assert sorted(flat) == list("abcdefg") and len(flat) == len(set(flat))
    assert [len(g) for g in groups] == [2, 2, 2, 1]
    assert [list(g) for g in person_groups(persons, 4, seed=3)] == [list(g) for g in groups]


def test_fewer_people_than_members_give_one_member_each_and_one_person_or_one_member_is_refused() -> None:
    assert len(person_groups(np.array(["a", "b", "a"]), 4, seed=0)) == 2
    with pytest.raises(ValueError, match="at least 2 people"):
        person_groups(np.array(["a", "a"]), 4, seed=0)
    with pytest.raises(ValueError, match="at least 2 members"):
        person_groups(np.array(["a", "b"]), 1, seed=0)


def test_committee_is_the_mean_of_its_members_and_learns_the_task(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4800, 8)).astype("float32")
    y = np.where(x[:, 0] > 0, 3, 0)
    persons = np.repeat(np.arange(6), 800)
    model = fit_committee(
        lambda x_train, seed, name: build_model("hr", 4, x_train, seed, (), 0.0, None, name),
        x,
        y,
        persons,
        3,
        30,
        7,
        "features",
        "mmer_hr",
    )
    members = [layer for layer in model.layers if layer.name.startswith("member_")]
    assert len(members) == 3
    probs = model.predict(x, verbose=0)
    mean = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    assert np.allclose(probs, mean, atol=1e-6)
    assert np.mean(probs.argmax(axis=1) == y) > 0.9
    assert probs[:, [1, 2]].max() < 1e-6, "classes no person had are never answered"
    fp32 = export_onnx(model, tmp_path / "c.onnx", "features", x[:64])
    int8 = quantize(fp32, tmp_path / "c8.onnx", "max-percentile", x[:128])
    quantized = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    int8_probs = quantized.run(["probs"], {"features": x})[0]
    assert np.mean(int8_probs.argmax(axis=1) == probs.argmax(axis=1)) > 0.95
