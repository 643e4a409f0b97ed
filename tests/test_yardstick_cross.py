"""The cross-corpus section: which people each model is trained and tested on, and what a corpus adds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from trainer.yardstick.cross import Training, cross_section, trainings
from trainer.yardstick.folds import person_folds
from trainer.yardstick.scores import majority_prediction, scores


def two_corpora() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Corpus "a" carries its two classes on feature 0, corpus "b" on feature 1: a model that never saw "b"
    cannot read "b"'s people."""
    rng = np.random.default_rng(0)
    rows = []
    for corpus, feature, n_people in (("a", 0, 6), ("b", 1, 8)):
        for p in range(n_people):
            for label in (0, 1) * 10:
                x = rng.normal(size=3)
                x[feature] += 3.0 if label else -3.0
                rows.append((x, label, f"{corpus}/{p:02d}", corpus))
    x, y, persons, corpora = zip(*rows, strict=True)
    return np.array(x), np.array(y), np.array(persons), np.array(corpora)


def test_cross_section_trains_on_the_right_people_and_shows_what_a_corpus_adds() -> None:
    x, y, persons, corpora = two_corpora()
    calls: list[tuple[set[str], list[set[str]]]] = []

    def score(trainings: Sequence[Training]) -> list[list[dict[str, dict[str, float]]]]:
        out = []
        for train, tests in trainings:
            calls.append((set(persons[train]), [set(persons[t]) for t in tests]))
            model = LogisticRegression().fit(x[train], y[train])
            out.append(
                [
                    {
                        "majority": scores(y[t], majority_prediction(y[train], int(t.sum()), 2), 2),
                        "logistic": scores(y[t], model.predict(x[t]), 2),
                    }
                    for t in tests
                ]
            )
        return out

    out = cross_section(persons, corpora, n_folds=3, seed=7, score=score)
    assert set(out) == {"a", "b"}
    assert out["b"]["folds"] == 3 and out["b"]["subjects"] == 8
    assert out["b"]["trained_on_others"]["corpora"] == ["a"] and out["b"]["trained_on_all"]["corpora"] == [
        "a",
        "b",
    ]
    for train, tests in calls:
        for test in tests:
            assert not train & test, "a test person is never trained on"
            assert len({p[0] for p in test}) == 1, "each test holds the people of one corpus"
    a_folds = [set(f) for f in person_folds(persons[corpora == "a"], 3, 7)]
    b_folds = [set(f) for f in person_folds(persons[corpora == "b"], 3, 7)]
    assert [tests for train, tests in calls if not any(p.startswith("b/") for p in train)] == [b_folds]
    assert len(calls) == 2 + 3, "one training per corpus on the others, one per joint fold"
    all_people = set(persons)
    assert [(train, tests) for train, tests in calls[2:]] == [
        (all_people - a - b, [a, b]) for a, b in zip(a_folds, b_folds, strict=True)
    ], "trained on all: everyone outside the joint fold, every corpus's own other people included"
    others, everything = out["b"]["trained_on_others"], out["b"]["trained_on_all"]
    assert set(everything) == {"corpora", "majority", "references"} and set(everything["references"]) == {
        "logistic"
    }
    assert len(everything["references"]["logistic"]["per_fold"]) == 3
    assert everything["references"]["logistic"]["accuracy"] > 0.95
    assert others["references"]["logistic"]["accuracy"] < 0.8, "corpus a alone does not teach b's signal"


def test_joint_folds_cover_corpora_with_fewer_people_than_folds() -> None:
    """A corpus with fewer persons than folds has fewer folds: the later joint folds hold out the other
    corpora's people only, and every person of every corpus is tested exactly once."""
    persons = np.array([f"a/{i}" for i in range(2)] + [f"b/{i}" for i in range(4)])
    corpora = np.array([p[0] for p in persons])
    runs = trainings(persons, corpora, n_folds=4, seed=7)
    joint = runs[2:]
    assert len(joint) == 4 and [len(tests) for _, tests in joint] == [2, 2, 1, 1]
    tested = [p for _, tests in joint for t in tests for p in persons[t]]
    assert sorted(tested) == sorted(persons), "every person is tested once by a trained_on_all model"
    for train, tests in runs:
        assert not np.any(train & np.logical_or.reduce(tests)), "a test person is never trained on"


def test_one_corpus_has_no_cross_section() -> None:
    with pytest.raises(ValueError, match="at least two corpora"):
        cross_section(np.array(["p1", "p2"]), np.array(["a", "a"]), 2, 7, lambda trainings: [])
