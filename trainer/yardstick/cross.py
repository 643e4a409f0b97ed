"""What adding a corpus does: each corpus's people scored by models trained on the other corpora only, and on
all of them (its own training people included, its test people never), fold by fold.

The folds of a corpus are `person_folds` of its own persons with the same seed and count as its own set's
entry, so a corpus's `trained_on_all` figures sit beside its own-corpus-only figures on the same test people.
The `trained_on_all` models are trained on joint folds: joint fold i holds out fold i of every corpus at once,
and the one model trained on everyone else scores each corpus's fold i. Every test person is still never
trained on, and one training serves every corpus (half the trainings of one per corpus and fold, with two
corpora), at the price of training on one fold fewer of the other corpora.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from trainer.yardstick.folds import person_folds
from trainer.yardstick.scores import over_folds

# a training: (its training rows, the test rows it scores); scored many at once (a caller may run them in
# parallel) -> per training, per test, {classifier name: scores}
Training = tuple[np.ndarray, Sequence[np.ndarray]]
Score = Callable[[Sequence[Training]], list[list[dict[str, dict[str, float]]]]]
TOP_LEVEL = ("majority", "deployed_int8", "deployed_fp32")


def trainings(persons: np.ndarray, corpora: np.ndarray, n_folds: int, seed: int) -> list[Training]:
    """Per corpus (two or more needed) one training on the other corpora scoring each of its folds, then per
    joint fold one training on everyone outside it scoring each corpus's fold of it, in corpus order."""
    return _trainings(corpora, _tests(persons, corpora, n_folds, seed))


def cross_section(persons: np.ndarray, corpora: np.ndarray, n_folds: int, seed: int, score: Score) -> dict:
    """Per corpus (two or more needed): `trained_on_others` and `trained_on_all`, each in a set entry's layout
    (majority, deployed_int8, deployed_fp32, references), over the corpus's folds by person."""
    tests = _tests(persons, corpora, n_folds, seed)
    names = list(tests)
    results = score(_trainings(corpora, tests))
    everything: dict[str, list] = {corpus: [] for corpus in names}
    for (present, _), per_test in zip(_joint_folds(tests), results[len(names) :], strict=True):
        for corpus, fold in zip(present, per_test, strict=True):
            everything[corpus].append(fold)
    return {
        corpus: {
            "folds": len(tests[corpus]),
            "subjects": len(np.unique(persons[corpora == corpus])),
            "trained_on_others": {"corpora": [n for n in names if n != corpus], **_entry(others)},
            "trained_on_all": {"corpora": names, **_entry(everything[corpus])},
        }
        for corpus, others in zip(names, results[: len(names)], strict=True)
    }


def _names(corpora: np.ndarray) -> list[str]:
    names = list(dict.fromkeys(np.asarray(corpora).tolist()))
    if len(names) < 2:
        raise ValueError(f"a cross section needs at least two corpora, got {names}")
    return names


def _trainings(corpora: np.ndarray, tests: dict[str, list[np.ndarray]]) -> list[Training]:
    out: list[Training] = [(corpora != corpus, folds) for corpus, folds in tests.items()]
    return out + [(~np.logical_or.reduce(held_out), held_out) for _, held_out in _joint_folds(tests)]


def _joint_folds(tests: dict[str, list[np.ndarray]]) -> list[tuple[list[str], list[np.ndarray]]]:
    """Joint fold i: the corpora that have an i-th fold (one with fewer persons than folds has fewer), and
    the test rows of those folds."""
    out = []
    for i in range(max(len(folds) for folds in tests.values())):
        present = [corpus for corpus, folds in tests.items() if i < len(folds)]
        out.append((present, [tests[corpus][i] for corpus in present]))
    return out


def _tests(persons: np.ndarray, corpora: np.ndarray, n_folds: int, seed: int) -> dict[str, list[np.ndarray]]:
    """Each corpus's test rows per fold: its own persons' folds, as its own set's entry folds them."""
    out = {}
    for corpus in _names(corpora):
        own = corpora == corpus
        out[corpus] = [own & np.isin(persons, fold) for fold in person_folds(persons[own], n_folds, seed)]
    return out


def _entry(per_fold: list[dict[str, dict[str, float]]]) -> dict:
    """Per-fold scores of every classifier as a set entry: the deployed models and majority at the top, the
    rest as references."""
    names = per_fold[0].keys()
    summary = {name: over_folds([fold[name] for fold in per_fold]) for name in names}
    entry = {name: summary[name] for name in TOP_LEVEL if name in summary}
    entry["references"] = {name: s for name, s in summary.items() if name not in TOP_LEVEL}
    return entry
