"""Subject-independent splits: whole subjects held out, and every part sees every class it can."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data import Dataset, split


def dataset(
    classes_per_subject: list[set[int]], windows_per_class: int = 10, modality: str = "hr"
) -> Dataset:
    """Each subject contributes windows_per_class windows of each of its classes."""
    y = np.concatenate([np.repeat(sorted(c), windows_per_class) for c in classes_per_subject])
    subjects = np.concatenate(
        [np.repeat(f"s{i}", windows_per_class * len(c)) for i, c in enumerate(classes_per_subject)]
    )
    return Dataset(
        modality, np.zeros((len(y), 3), np.float32), y, subjects, np.arange(len(y), dtype=float), "test"
    )


# Three subjects carry one class only: a label-blind draw often tests on two of them and the
# figures then say nothing (the --fast run scored image 0.000 that way).
FEW = [{0, 1}, {1, 2}, {2, 0}, {1}, {1}, {1}]


@pytest.mark.parametrize("seed", range(12))
def test_train_and_test_subjects_cover_every_class(seed: int) -> None:
    parts = split(dataset(FEW), "subject-independent", seed)
    assert set(parts.train.y) == {0, 1, 2}
    assert set(parts.test.y) == {0, 1, 2}
    assert not set(parts.train.subjects) & (set(parts.test.subjects) | set(parts.val.subjects))
    assert not set(parts.test.subjects) & set(parts.val.subjects)
    assert (len(set(parts.test.subjects)), len(set(parts.val.subjects))) == (2, 1)


def test_modalities_of_the_same_subjects_get_the_same_split() -> None:
    """Fusion aligns modalities per test subject: window counts must not move subjects between parts."""
    a = split(dataset(FEW, windows_per_class=10, modality="hr"), "subject-independent", 3)
    b = split(dataset(FEW, windows_per_class=37, modality="image"), "subject-independent", 3)
    for part in ("train", "val", "test"):
        assert set(getattr(a, part).subjects) == set(getattr(b, part).subjects), part


def test_a_class_only_one_subject_has_goes_to_training() -> None:
    parts = split(dataset([{0}, {0, 1}, {1}, {0, 1}, {1, 2}]), "subject-independent", 0)
    assert set(parts.train.y) == {0, 1, 2}


def test_a_split_that_already_covers_every_class_is_the_seeded_draw() -> None:
    """Data where every subject has every class keeps the plain seeded permutation (figures unchanged)."""
    data = dataset([{0, 1, 2, 3}] * 8)
    order = np.random.default_rng(5).permutation(np.unique(data.subjects))
    parts = split(data, "subject-independent", 5)
    assert set(parts.test.subjects) == set(order[:2])
    assert set(parts.val.subjects) == set(order[2:4])
