"""Each corpus's part of a pipeline run: its share of the data, its people in each part of the split, its
labels, and the model's own figures on its test people, so a user sees what every corpus brings and gets."""

from __future__ import annotations

import numpy as np

from trainer.data import Split, corpus_of
from trainer.yardstick.scores import majority_prediction, scores


def corpus_report(parts: Split, probs: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per corpus: people and rows per part, share of all rows, label counts, and for each model in `probs`
    (rows of parts.test) accuracy, macro-F1 and UAR on the corpus's test people, beside always answering the
    training set's majority class."""
    sections = {"train": parts.train, "val": parts.val, "test": parts.test}
    corpora = {name: corpus_of(d.subjects) for name, d in sections.items()}
    labels = parts.train.taxonomy.labels
    total = sum(len(d) for d in sections.values())
    out: dict[str, dict] = {}
    for corpus in sorted(set().union(*(set(c.tolist()) for c in corpora.values()))):
        rows = {name: corpora[name] == corpus for name in sections}
        y = np.concatenate([d.y[rows[name]] for name, d in sections.items()])
        entry: dict = {
            "share": round(float(len(y) / total), 4),
            "people": {name: len(np.unique(d.subjects[rows[name]])) for name, d in sections.items()},
            "rows": {name: int(rows[name].sum()) for name in sections},
            "labels": dict(zip(labels, np.bincount(y, minlength=len(labels)).tolist(), strict=True)),
            "test": {},
        }
        test = rows["test"]
        if test.any():
            y_test, k = parts.test.y[test], len(labels)
            predictions = {model: p[test].argmax(axis=1) for model, p in probs.items()}
            predictions["majority"] = majority_prediction(parts.train.y, len(y_test), k)
            for model, pred in predictions.items():
                entry["test"][model] = {m: round(v, 4) for m, v in scores(y_test, pred, k).items()}
        out[corpus] = entry
    return out
