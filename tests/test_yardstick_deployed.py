"""The yardstick scores the model the pipeline would ship: chosen on a held-out fifth of the training persons,
then trained again on all of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmer_core.modalities import get_spec
from mmer_core.taxonomy import QUADRANTS
from trainer.data import Dataset
from trainer.yardstick.deployed import score_onnx, train_deployed, validation_persons


def test_the_deployed_model_learns_from_the_persons_its_choice_was_made_on(tmp_path: Path) -> None:
    """Only the validation persons show "calm": a model trained without them never answers it (classes absent
    from training are never predicted), the one the pipeline ships does."""
    rng = np.random.default_rng(0)
    persons = np.repeat([f"p{i}" for i in range(10)], 40)
    chosen_on = np.isin(persons, validation_persons(persons, seed=3))
    calm, others = QUADRANTS.index("calm"), [QUADRANTS.index(n) for n in ("happy", "angry", "sad")]
    y = np.where(chosen_on, calm, rng.choice(others, len(persons)))
    width = get_spec("eeg").input_shape[0]
    centres = rng.normal(0.0, 3.0, (len(QUADRANTS), width))
    x = (centres[y] + rng.normal(0.0, 1.0, (len(y), width))).astype(np.float32)
    data = Dataset("eeg", x, y, persons, np.arange(len(y), dtype=float), "generated")
    trained = train_deployed(data, tmp_path, seed=3, epochs=20, methods=("max",))
    answers = score_onnx(trained.int8, x[chosen_on]).argmax(axis=1)
    assert (answers == calm).mean() > 0.5, np.bincount(answers, minlength=len(QUADRANTS))
    assert trained.method == "max"
