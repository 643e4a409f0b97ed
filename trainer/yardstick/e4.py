"""The e4 yardstick: Empatica E4 sessions with labels.csv (Stress-Predict's layout), folds by wearer.

Unit: one 60 s hr window, as the edge cuts them every 5 s from the session. Scored windows are those of
the test wearers that are labelled, that the edge accepts (enough plausible beats) and that come after
the wearer's warm-up: every classifier is scored on exactly these. The deployed recipe
(trainer.wrist_recipe) is trained on the other wearers, exported, quantized, and its int8 model scored on
what the edge gives it: the same mmer_core preprocessing, the same running wearer baseline updated window
by window in recording order. References on the same folds: a random forest on 60 s statistics of HR/HRV,
EDA and temperature, plain, relative to the wearer's running baseline (what a device computes while it
warms up), and relative to the wearer's whole-recording statistics (`-oracle`: no device has them).
The model a device with beats only runs (trained without EDA and temperature) is scored on the windows it
scores, beside the same forests on the HR/HRV statistics alone (`references_beats_only`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmer_core import wearer_baseline
from mmer_core.bundle import load_public_key, read_bundle
from mmer_core.taxonomy import QUADRANTS
from trainer.wrist_recipe import WRIST, WristRecipe
from trainer.yardstick.e4_windows import (
    REFERENCE_STATS,
    SessionWindows,
    labelled_sessions,
    session_windows,
)
from trainer.yardstick.folds import fold_masks, person_folds
from trainer.yardstick.options import YardstickOptions
from trainer.yardstick.scored import Scored
from trainer.yardstick.scores import add_fold, majority_prediction, over_folds, scores
from trainer.yardstick.workers import run_jobs

UNIT = "window"
BEAT_STATS = [i for i, name in enumerate(REFERENCE_STATS) if not name.startswith(("eda_", "temp_"))]
DEFAULT_FOLDS = 8
PUBLISHED = {
    "accuracy": 0.765,
    "source": "Campanella et al., Sensors 2023: wrist PPG+EDA stress, random forest",
}


class Rows:
    """Every window of every wearer, concatenated in recording order per wearer, with what each classifier
    takes: the deployed model's inputs (full, and as a beat-only device), the references' statistics."""

    def __init__(self, sessions: list[SessionWindows], recipe: WristRecipe) -> None:
        self.persons = np.concatenate([np.full(len(s.y), s.person) for s in sessions])
        self.y = np.concatenate([s.y for s in sessions])
        full = [recipe.device_inputs(s.features) for s in sessions]
        beats_only = [recipe.beats_only().device_inputs(s.features) for s in sessions]
        self.x = np.concatenate([x for x, _ in full])
        self.x_beats_only = np.concatenate([x for x, _ in beats_only])
        self.scored = np.concatenate([m for _, m in full]) & (self.y >= 0)
        self.scored_beats_only = np.concatenate([m for _, m in beats_only]) & (self.y >= 0)
        self.stats = np.concatenate([s.stats for s in sessions])
        self.stats_running = np.concatenate([_running_stats(s.stats, recipe) for s in sessions])
        self.stats_oracle = np.concatenate([_oracle(s.stats) for s in sessions])
        self.beat_stats = self.stats[:, BEAT_STATS]
        self.beat_stats_running = np.concatenate(
            [_running_stats(s.stats[:, BEAT_STATS], recipe) for s in sessions]
        )


def _running_stats(stats: np.ndarray, recipe: WristRecipe) -> np.ndarray:
    ok = np.all(np.isfinite(stats), axis=1)
    out = np.full(stats.shape, np.nan)
    out[ok] = wearer_baseline.relative_to_wearers(stats[ok], np.zeros(int(ok.sum())), 0, recipe.horizon)[0]
    return out


def _oracle(stats: np.ndarray) -> np.ndarray:
    """Each statistic relative to the wearer's mean and spread over the whole recording."""
    mean, std = np.nanmean(stats, axis=0), np.nanstd(stats, axis=0)
    return (stats - mean) / np.where(std > 1e-9, std, 1.0)


def forest_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, quick: bool) -> np.ndarray:
    """A class-balanced random forest (missing statistics imputed by the training mean): the classical
    reference. Single-threaded: the caller holds threadpool_limits(1)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    forest = RandomForestClassifier(
        20 if quick else 300, min_samples_leaf=5, class_weight="balanced", n_jobs=1, random_state=7
    )
    model = make_pipeline(SimpleImputer(keep_empty_features=True), forest)
    return model.fit(x_train, y_train).predict(x_test)


def score_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    """Class probabilities from an ONNX model, one window at a time as the edge runs it."""
    from trainer.evaluate import session

    sess = session(path)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(["probs"], {name: x[i : i + 1]})[0] for i in range(len(x))])


def _fold(
    rows: Rows, test_persons: np.ndarray, recipe: WristRecipe, options: YardstickOptions, work: Path
) -> dict[str, dict[str, float]]:
    k = len(QUADRANTS)
    train, test = fold_masks(rows.persons, test_persons)
    fit_full, fit_beats = train & rows.scored, train & rows.scored_beats_only
    model = recipe.train(
        rows.x[fit_full], rows.y[fit_full], rows.persons[fit_full], work / "full", options.seed
    )
    beats_model = recipe.beats_only().train(
        rows.x_beats_only[fit_beats], rows.y[fit_beats], rows.persons[fit_beats], work / "beats", options.seed
    )
    te = test & rows.scored
    truth = rows.y[te]
    labelled = train & (rows.y >= 0)
    te_beats = test & rows.scored_beats_only
    out = {
        "deployed_int8": scores(truth, score_onnx(model.int8, rows.x[te]).argmax(axis=1), k),
        "deployed_fp32": scores(truth, score_onnx(model.fp32, rows.x[te]).argmax(axis=1), k),
        "deployed_int8_beats_only": scores(
            rows.y[te_beats], score_onnx(beats_model.int8, rows.x_beats_only[te_beats]).argmax(axis=1), k
        ),
        "majority": scores(truth, majority_prediction(rows.y[labelled], len(truth), k), k),
    }
    forests = {  # each reference's statistics, and the windows it is scored on: those of its model
        "rf-stats": (rows.stats, te),
        "rf-stats-wearer-running": (rows.stats_running, te),
        "rf-stats-wearer-oracle": (rows.stats_oracle, te),
        "beats-rf-stats": (rows.beat_stats, te_beats),
        "beats-rf-stats-wearer-running": (rows.beat_stats_running, te_beats),
    }
    for name, (stats, scored) in forests.items():
        predicted = forest_predict(stats[labelled], rows.y[labelled], stats[scored], options.quick)
        out[name] = scores(rows.y[scored], predicted, k)
    return out


@dataclass(frozen=True)
class _Fold:
    """One fold's job for a worker (trainer.yardstick.workers): train and score with the fold's test wearers."""

    rows: Rows
    recipe: WristRecipe
    options: YardstickOptions
    work: Path

    def __call__(self, fold: tuple[int, np.ndarray]) -> dict[str, dict[str, float]]:
        i, test_persons = fold
        return _fold(self.rows, test_persons, self.recipe, self.options, self.work / f"fold{i}")


def yardstick(folder: Path, options: YardstickOptions) -> dict:
    """Folds by wearer on an E4 folder: deployed int8 and fp32, references and majority, per window."""
    recipe = WRIST.quick() if options.quick else WRIST
    rows = Rows(run_jobs(session_windows, labelled_sessions(folder), options.workers), recipe)
    folds = person_folds(np.unique(rows.persons), options.folds or DEFAULT_FOLDS, options.seed)
    per_fold: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mmer-yardstick-e4-") as tmp:
        job = _Fold(rows, recipe, options, Path(tmp))
        results = run_jobs(job, list(enumerate(folds)), options.workers)
    for i, (test_persons, fold) in enumerate(zip(folds, results, strict=True)):
        add_fold(per_fold, fold, f"e4 fold {i + 1}/{len(folds)} {','.join(map(str, test_persons))}")
    counts = np.bincount(rows.y[rows.scored], minlength=len(QUADRANTS))
    return {
        "unit": UNIT,
        "folds": len(folds),
        "subjects": len(np.unique(rows.persons)),
        "windows_scored": int(rows.scored.sum()),
        "warmup_windows_per_wearer": recipe.warmup,
        "class_counts": dict(zip(QUADRANTS.labels, counts.tolist(), strict=True)),
        "recipe": recipe.describe(),
        "majority": over_folds(per_fold["majority"]),
        "deployed_int8": over_folds(per_fold["deployed_int8"]),
        "deployed_fp32": over_folds(per_fold["deployed_fp32"]),
        "deployed_int8_beats_only": over_folds(per_fold["deployed_int8_beats_only"]),
        "references": {n: over_folds(f) for n, f in per_fold.items() if n.startswith("rf-")},
        "references_beats_only": {
            n.removeprefix("beats-"): over_folds(f) for n, f in per_fold.items() if n.startswith("beats-rf-")
        },
        "published": PUBLISHED,
    }


def edge_windows(s: SessionWindows, params: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """What the edge scores of a session with a bundle of these preprocessing params: the model inputs of the
    labelled windows it accepts past the wearer's warm-up, and the mask of those windows in the session."""
    wanted = wearer_baseline.requested(params)
    ok = np.all(np.isfinite(s.features), axis=1)
    x, scored = s.features[ok], np.ones(int(ok.sum()), bool)
    if wanted is not None:
        x, scored = wearer_baseline.relative_to_wearers(
            x, np.zeros(len(x)), *wanted, levels=wearer_baseline.with_levels(params)
        )
    keep = np.zeros(len(s.y), bool)
    keep[np.flatnonzero(ok)[scored]] = True
    keep &= s.y >= 0
    return x[keep[ok]], keep


def score_bundle(bundle_dir: Path, folder: Path, public_key: Path | None = None) -> Scored:
    """An hr bundle on a labelled E4 folder, exactly as the edge scores it: the session's windows through the
    shared preprocessing, the bundle's wearer baseline updated in recording order with its warm-up unscored,
    the int8 model run one window at a time; one row per scored window."""
    key = public_key or bundle_dir.parent / "keys" / "trainer.pub"
    bundle = read_bundle(bundle_dir, load_public_key(key))
    if bundle.manifest.modality != "hr":
        raise ValueError(f"{bundle_dir}: a {bundle.manifest.modality} bundle, not hr")
    params = bundle.manifest.preprocessing.params
    xs, ys, persons = [], [], []
    for s in (session_windows(f) for f in labelled_sessions(folder)):
        x, keep = edge_windows(s, params)
        xs.append(x)
        ys.append(s.y[keep])
        persons.append(np.full(int(keep.sum()), s.person))
    probs = score_onnx(bundle.file("model"), np.concatenate(xs).astype(np.float32))
    return Scored(
        UNIT, tuple(bundle.manifest.taxonomy.labels), np.concatenate(ys), probs, np.concatenate(persons)
    )
