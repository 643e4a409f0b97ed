"""What adding a corpus does: each corpus's people scored by models trained on the other corpora only, and on
all of them (its own training people included, its test people never), fold by fold.

The folds of a corpus are `person_folds` of its own persons with the same seed and count as its own set's
entry, so a corpus's `trained_on_all` figures sit beside its own-corpus-only figures on the same test people.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from trainer.yardstick.folds import person_folds
from trainer.yardstick.scores import over_folds

# (training rows, test rows of each fold) -> per fold, {classifier name: scores}; one training, many tests
Score = Callable[[np.ndarray, Sequence[np.ndarray]], list[dict[str, dict[str, float]]]]
TOP_LEVEL = ("majority", "deployed_int8", "deployed_fp32")


def cross_section(persons: np.ndarray, corpora: np.ndarray, n_folds: int, seed: int, score: Score) -> dict:
    """Per corpus (two or more needed): `trained_on_others` and `trained_on_all`, each in a set entry's layout
    (majority, deployed_int8, deployed_fp32, references), over the corpus's folds by person, and the seconds
    its trainings took."""
    names = list(dict.fromkeys(np.asarray(corpora).tolist()))
    if len(names) < 2:
        raise ValueError(f"a cross section needs at least two corpora, got {names}")
    out: dict = {}
    for corpus in names:
        started = time.monotonic()
        own = corpora == corpus
        folds = person_folds(persons[own], n_folds, seed)
        tests = [own & np.isin(persons, fold) for fold in folds]
        others = score(~own, tests)
        everything = [score(~test, [test])[0] for test in tests]
        out[corpus] = {
            "folds": len(folds),
            "subjects": len(np.unique(persons[own])),
            "trained_on_others": {"corpora": [n for n in names if n != corpus], **_entry(others)},
            "trained_on_all": {"corpora": names, **_entry(everything)},
            "seconds": round(time.monotonic() - started, 1),
        }
    return out


def _entry(per_fold: list[dict[str, dict[str, float]]]) -> dict:
    """Per-fold scores of every classifier as a set entry: the deployed models and majority at the top, the
    rest as references."""
    names = per_fold[0].keys()
    summary = {name: over_folds([fold[name] for fold in per_fold]) for name in names}
    entry = {name: summary[name] for name in TOP_LEVEL if name in summary}
    entry["references"] = {name: s for name, s in summary.items() if name not in TOP_LEVEL}
    return entry
