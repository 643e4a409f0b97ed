"""Real-data figures by leave-one-subject-out cross-validation; writes JSON.

    python bench/realdata.py [--data ../shared/data] [--json FILE] [--epochs N] [--only speech|hr]

One held-out test split of a few subjects swings by many points, so every
subject is held out once (RAVDESS: each of the 6 actors alone; Stress-Predict
E4: its 16 subjects in 6 groups, --max-folds) and the figures are the mean and
spread over folds. For each fold the
deployed Keras model is trained on the other subjects (one of them validates
for early stopping) and compared with two references on the same split: the
majority class of the training subjects, and a class-balanced logistic
regression on the same preprocessed features, also with each subject's features taken relative to that
subject's mean and spread over the whole recording (which no device knows while it scores). For feature
vectors (hr), the deployed model and the logistic regression are also trained and tested on the features
the edge gives a model with a wearer baseline (`--wearer-baseline`: running statistics, the first windows of
each subject left out as calibration). For speech, the windows of one
utterance are also voted (mean probability), which is how a conversation is
scored. A data set that is absent is skipped, and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from trainer.data import Dataset, relative_to_wearers  # noqa: E402
from trainer.evaluate import confusion, macro_f1  # noqa: E402

SETS = {"speech": "ravdess-speech-16k", "hr": "stress-predict-e4"}


def utterances(data: Dataset) -> np.ndarray:
    """Utterance id per window: a loader numbers each file's windows from its start, so t_end falls at a new file."""
    starts = np.r_[True, np.diff(data.t_end) <= 0] | np.r_[True, data.subjects[1:] != data.subjects[:-1]]
    return np.cumsum(starts)


def scores(y: np.ndarray, pred: np.ndarray, k: int) -> dict[str, float]:
    return {"accuracy": float((y == pred).mean()), "macro_f1": float(macro_f1(confusion(y, pred, k)))}


def vote(probs: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability per group; returns (group ids, predicted class per group)."""
    ids, inverse = np.unique(groups, return_inverse=True)
    summed = np.zeros((len(ids), probs.shape[1]))
    np.add.at(summed, inverse, probs)
    return ids, summed.argmax(axis=1)


def logistic(train: Dataset, test: Dataset, k: int) -> np.ndarray:
    """Class-balanced logistic regression on standardised, flattened features: a reference, not the product.

    Returns (N, k) probabilities over the whole taxonomy (classes absent from training get 0)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    flat = lambda d: d.x.reshape(len(d), -1)  # noqa: E731
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, class_weight="balanced", max_iter=500))
    model.fit(flat(train), train.y)
    probs = np.zeros((len(test), k))
    probs[:, model.classes_] = model.predict_proba(flat(test))
    return probs


def per_subject_standardised(data: Dataset) -> Dataset:
    """Each subject's features relative to that subject's own mean and spread (no labels used).

    This is what a calibration period on the device would give: the model then sees change from the
    wearer's own baseline instead of absolute levels, which differ more between people than between states."""
    x = data.x.astype(np.float64).copy()
    for subject in np.unique(data.subjects):
        rows = data.subjects == subject
        mean, std = x[rows].mean(axis=0), x[rows].std(axis=0)
        x[rows] = (x[rows] - mean) / np.where(std > 1e-6, std, 1.0)
    return Dataset(data.modality, x.astype(np.float32), data.y, data.subjects, data.t_end, data.description)


def deployed_model(data: Dataset, test_subjects: list[str], val_subject: str, epochs: int, seed: int):
    """The deployed Keras model trained on every other subject, validated on one; (probs, test, train)."""
    from trainer.models import build_model, fit

    is_test = np.isin(data.subjects, test_subjects)
    test, val = data.take(is_test), data.take(data.subjects == val_subject)
    train = data.take(~is_test & (data.subjects != val_subject))
    model = build_model(data.modality, len(data.taxonomy), train.x, seed)
    fit(model, train.x, train.y, val.x, val.y, epochs, seed, log=lambda _: None)
    return model.predict(test.x, verbose=0), test, train


def fold(
    data: Dataset,
    normalised: Dataset,
    relative: tuple[Dataset, np.ndarray] | None,
    test_subjects: list[str],
    val_subject: str,
    epochs: int,
    seed: int,
) -> dict:
    """Train on every other subject, validate on one, test on the held-out ones (normalised: the same rows,
    per-subject standardised, for the per-subject-baseline reference; relative: the rows as the edge gives
    them to a model with a wearer baseline, past calibration, and which rows of data those are)."""
    probs, test, train = deployed_model(data, test_subjects, val_subject, epochs, seed)
    k = len(data.taxonomy)
    majority = np.bincount(train.y, minlength=k).argmax()
    out = {
        "subjects": test_subjects,
        "windows": len(test),
        "model": scores(test.y, probs.argmax(axis=1), k),
        "majority": scores(test.y, np.full(len(test), majority), k),
        "logistic": scores(test.y, logistic(train, test, k).argmax(axis=1), k),
    }
    is_test = np.isin(data.subjects, test_subjects)
    rows_train = ~is_test & (data.subjects != val_subject)
    probs_norm = logistic(normalised.take(rows_train), normalised.take(is_test), k)
    out["logistic_per_subject_baseline"] = scores(test.y, probs_norm.argmax(axis=1), k)
    if relative is not None:
        rows, scored = relative
        probs_rel, test_rel, train_rel = deployed_model(rows, test_subjects, val_subject, epochs, seed)
        out["model_wearer_baseline"] = scores(test_rel.y, probs_rel.argmax(axis=1), k)
        out["logistic_wearer_baseline"] = scores(
            test_rel.y, logistic(train_rel, test_rel, k).argmax(axis=1), k
        )
        out["windows_wearer_baseline"] = len(test_rel)
        # the calibration windows are all at rest: the plain model and the majority on the same windows
        past = scored[is_test]
        out["model_past_calibration"] = scores(test.y[past], probs[past].argmax(axis=1), k)
        out["majority_past_calibration"] = scores(test.y[past], np.full(int(past.sum()), majority), k)
    if data.modality == "speech":
        groups = utterances(test)
        ids, pred = vote(probs, groups)
        truth = np.array([test.y[groups == g][0] for g in ids])
        out["model_utterance_vote"] = scores(truth, pred, k)
    return out


def summary(folds: list[dict]) -> dict:
    """Mean and standard deviation over folds of every score, weighting folds equally."""
    out: dict = {}
    for name in folds[0]:
        if isinstance(folds[0][name], dict):
            out[name] = {
                metric: {
                    "mean": round(float(np.mean([f[name][metric] for f in folds])), 4),
                    "sd": round(float(np.std([f[name][metric] for f in folds])), 4),
                }
                for metric in folds[0][name]
            }
    return out


def run(modality: str, root: Path, epochs: int, seed: int, max_folds: int, warmup: int) -> dict:
    if modality == "speech":
        from trainer.loaders.speech import load_speech

        data = load_speech(root)
    else:
        from trainer.loaders.e4 import load_e4

        data = load_e4(root)
    subjects = sorted(set(data.subjects.tolist()))
    normalised = per_subject_standardised(data)  # independent of the fold: once
    # feature vectors only (hr): what the edge gives a model trained with `--wearer-baseline warmup`
    relative = relative_to_wearers(data, warmup) if data.x.ndim == 2 and warmup > 0 else None
    groups = [g.tolist() for g in np.array_split(np.array(subjects), min(len(subjects), max_folds))]
    started = time.monotonic()
    folds = []
    for i, held_out in enumerate(groups):
        val_subject = groups[(i + 1) % len(groups)][0]
        folds.append(fold(data, normalised, relative, held_out, val_subject, epochs, seed))
        f = folds[-1]
        print(
            f"{modality} fold {i + 1}/{len(groups)} {','.join(held_out)}: model {f['model']['accuracy']:.3f} "
            f"majority {f['majority']['accuracy']:.3f} logistic {f['logistic']['accuracy']:.3f} "
            f"per-subject {f['logistic_per_subject_baseline']['accuracy']:.3f}"
            + (f" model+wearer baseline {f['model_wearer_baseline']['accuracy']:.3f}" if relative else ""),
            flush=True,
        )
    counts = np.bincount(data.y, minlength=len(data.taxonomy))
    return {
        "data": data.description,
        "split": "leave-one-subject-out"
        if len(groups) == len(subjects)
        else f"{len(groups)}-fold by subject",
        "subjects": len(subjects),
        "windows": len(data),
        "wearer_baseline_windows": warmup if relative is not None else 0,
        "class_counts": dict(zip(data.taxonomy.labels, counts.tolist(), strict=True)),
        "seconds": round(time.monotonic() - started, 1),
        "summary": summary(folds),
        "folds": folds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=_HERE.parent.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=Path("bench/results/realdata.json"))
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--max-folds",
        type=int,
        default=6,
        help="subjects are held out in at most this many groups (default 6)",
    )
    parser.add_argument(
        "--wearer-baseline",
        type=int,
        default=300,
        metavar="WINDOWS",
        help="calibration windows per wearer for the model with a wearer baseline (hr; default 5 minutes; 0: leave it out)",
    )
    parser.add_argument("--only", choices=sorted(SETS), action="append", help="run only this modality")
    args = parser.parse_args(argv)
    result: dict = {}
    for modality in args.only or sorted(SETS):
        root = args.data / SETS[modality]
        if not root.is_dir():
            print(f"{modality}: {root} is absent; skipped", flush=True)
            result[modality] = {"skipped": f"{root} is absent"}
            continue
        result[modality] = run(modality, root, args.epochs, args.seed, args.max_folds, args.wearer_baseline)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for modality, r in result.items():
        if "summary" in r:
            s = r["summary"]
            line = ", ".join(
                f"{name} {v['accuracy']['mean']:.3f}±{v['accuracy']['sd']:.3f}" for name, v in s.items()
            )
            print(f"{modality} ({r['split']}): {line}")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
