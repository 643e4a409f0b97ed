"""DEAP yardstick: folds by subject, one unit per 2 s window, the deployed int8 bundle beside classical references.

Labels are each trial's valence/arousal ratings split at the scale midpoint into quadrants (every window of
a trial carries its trial's label). Each subject's windows are in recording order, and the first
`wearer_baseline` windows of every subject are the device's calibration period: not scored, by any
classifier. Per fold the deployed recipe (trainer.kind_recipes: the dense model on DE + relative band power +
asymmetry taken relative to the wearer's running baseline, class-balanced, exported and quantized as the
pipeline does) is trained on the other subjects and its int8 model scored one window at a time. References
on the same windows and folds: class-balanced RBF SVM and random forest on the same features, plain, relative
to the running per-subject baseline a device has (`-subject-running`), and z-scored with each subject's
statistics over the whole recording (`-subject-oracle`, a ceiling no device reaches); the majority class.
The SVM trains on at most SVM_MAX_ROWS windows (a seeded sample; DEAP gives ~1,200 a subject) and every
reference runs single-threaded (threadpool_limits(1)).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mmer_core import wearer_baseline
from trainer.data import Dataset, relative_to_wearers
from trainer.kind_recipes import recipe
from trainer.loaders.deap import load_deap
from trainer.yardstick.deployed import quick_or_full, score_onnx, train_deployed
from trainer.yardstick.folds import fold_masks, person_folds, person_oracle
from trainer.yardstick.options import YardstickOptions
from trainer.yardstick.scored import Scored
from trainer.yardstick.scores import add_fold, majority_prediction, over_folds, scores

UNIT = "window"
DEFAULT_FOLDS = 8
SVM_MAX_ROWS = 6000
FOREST_TREES = 200


def svm(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int, max_rows: int) -> np.ndarray:
    """Scaled, class-balanced RBF SVM on at most max_rows training windows."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rows = np.random.default_rng(seed).permutation(len(x_train))[:max_rows]
    model = make_pipeline(StandardScaler(), SVC(C=1.0, gamma="scale", class_weight="balanced"))
    model.fit(x_train[rows], y_train[rows])
    return model.predict(x_test)


def forest(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int, trees: int) -> np.ndarray:
    """Class-balanced random forest."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        trees, min_samples_leaf=5, class_weight="balanced", n_jobs=1, random_state=seed
    )
    model.fit(x_train, y_train)
    return model.predict(x_test)


def _fold(
    views: dict[str, Dataset], test_subjects: np.ndarray, options: YardstickOptions, work: Path
) -> dict[str, dict[str, float]]:
    """Every classifier of one fold on the test subjects' windows past calibration."""
    running = views["running"]
    k = len(running.taxonomy)
    train_mask, test_mask = fold_masks(running.subjects, test_subjects)
    y_train, y_test = running.y[train_mask], running.y[test_mask]
    trained = train_deployed(
        running.take(train_mask),
        work,
        options.seed,
        *quick_or_full(options, recipe("deap").epochs),
        recipe("deap").class_weights,
    )
    out = {
        "deployed_int8": scores(y_test, score_onnx(trained.int8, running.x[test_mask]).argmax(axis=1), k),
        "deployed_fp32": scores(y_test, score_onnx(trained.fp32, running.x[test_mask]).argmax(axis=1), k),
        "majority": scores(y_test, majority_prediction(y_train, int(test_mask.sum()), k), k),
    }
    max_rows, trees = (500, 20) if options.quick else (SVM_MAX_ROWS, FOREST_TREES)
    suffixes = {"plain": "", "running": "-subject-running", "oracle": "-subject-oracle"}
    with threadpool_limits(1):
        for view, suffix in suffixes.items():
            x = views[view].x
            predicted = svm(x[train_mask], y_train, x[test_mask], options.seed, max_rows)
            out[f"svm{suffix}"] = scores(y_test, predicted, k)
            predicted = forest(x[train_mask], y_train, x[test_mask], options.seed, trees)
            out[f"rf{suffix}"] = scores(y_test, predicted, k)
    return out


def yardstick(folder: Path, options: YardstickOptions) -> dict:
    """Folds by subject on a DEAP folder: deployed int8 and fp32, references and majority, per window."""
    warmup = recipe("deap").wearer_baseline
    data = load_deap(folder)
    running, scored = relative_to_wearers(data, warmup)
    views = {
        "plain": data.take(scored),
        "running": running,
        "oracle": Dataset(
            data.modality,
            person_oracle(data.x, data.subjects)[scored],
            running.y,
            running.subjects,
            running.t_end,
            data.description,
        ),
    }
    folds = person_folds(running.subjects, options.folds or DEFAULT_FOLDS, options.seed)
    per_fold: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mmer-yardstick-deap-") as tmp:
        for i, test_subjects in enumerate(folds):
            fold = _fold(views, test_subjects, options, Path(tmp) / f"fold{i}")
            add_fold(per_fold, fold, f"deap fold {i + 1}/{len(folds)} {','.join(map(str, test_subjects))}")
    counts = np.bincount(running.y, minlength=len(running.taxonomy))
    special = ("deployed_int8", "deployed_fp32", "majority")
    return {
        "unit": UNIT,
        "folds": len(folds),
        "subjects": len(np.unique(running.subjects)),
        "units": len(running),
        "warmup_windows_per_subject": warmup,
        "data": data.description,
        "class_counts": dict(zip(running.taxonomy.labels, counts.tolist(), strict=True)),
        "majority": over_folds(per_fold["majority"]),
        "deployed_int8": over_folds(per_fold["deployed_int8"]),
        "deployed_fp32": over_folds(per_fold["deployed_fp32"]),
        "references": {n: over_folds(f) for n, f in per_fold.items() if n not in special},
    }


def score_bundle(bundle_dir: Path, folder: Path, public_key: Path | None = None) -> Scored:
    """An eeg bundle on a DEAP folder, exactly as the edge scores it: the shared preprocessing, the bundle's
    wearer baseline (if it asks for one) updated window by window in recording order with its calibration
    windows unscored, the int8 model one window at a time."""
    from mmer_core.bundle import load_public_key, read_bundle

    key = public_key or bundle_dir.parent / "keys" / "trainer.pub"
    bundle = read_bundle(bundle_dir, load_public_key(key))
    if bundle.manifest.modality != "eeg":
        raise ValueError(f"{bundle_dir}: a {bundle.manifest.modality} bundle, not eeg")
    data = load_deap(folder)
    wanted = wearer_baseline.requested(bundle.manifest.preprocessing.params)
    if wanted is not None:
        data, _ = relative_to_wearers(data, *wanted)
    probs = score_onnx(bundle.file("model"), data.x)
    return Scored(UNIT, tuple(bundle.manifest.taxonomy.labels), data.y, probs, data.subjects)
