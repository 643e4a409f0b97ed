"""Speech yardstick: folds by speaker, one unit per utterance (recording), the deployed int8 bundle beside the
classical references on the same folds.

Per fold the deployed recipe (trainer.recipes.SPEECH: openSMILE ComParE functionals relative to the
speaker's running baseline, an L2-regularised class-balanced linear softmax) is trained on the other
speakers, exported and quantized with every method, the method chosen as the pipeline chooses, and the int8
model is scored the way the edge scores: utterances the edge's segmenter finds, the wearer baseline updated
utterance by utterance in recording order, the warm-up utterances unscored. Every reference and the
majority class are scored on the same utterances. References (scaled, class-balanced RBF SVM on eGeMAPSv02
functionals of the same utterances): plain; with the running per-speaker baseline a device has; `-oracle`,
z-scored with each speaker's statistics over the whole recording (a ceiling no device reaches). With
RAVDESS names, the 8 original emotions are also scored (UAR) beside the published figure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mmer_core import wearer_baseline
from mmer_core.bundle import load_public_key, read_bundle
from mmer_core.speech_files import RAVDESS
from mmer_core.taxonomy import QUADRANTS
from trainer.balance import balanced_sample_weights
from trainer.loaders.speech import load_corpora, load_recordings
from trainer.loaders.utterances import Recordings
from trainer.recipes import SPEECH, SpeechRecipe
from trainer.yardstick.cross import Training, cross_section
from trainer.yardstick.folds import fold_masks, person_folds, person_oracle
from trainer.yardstick.options import YardstickOptions
from trainer.yardstick.scored import Scored
from trainer.yardstick.scores import add_fold, majority_prediction, over_folds, print_fold, scores
from trainer.yardstick.workers import run_jobs

UNIT = "utterance"
DEFAULT_FOLDS = 6
PUBLISHED_8_CLASS = {"uar": 0.652, "model": "ResLSTM-SA, 47k parameters", "classes": 8}


# ------------------------------------------------------------------ per-speaker normalisation
def running(x: np.ndarray, speakers: np.ndarray, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows relative to their speaker's running baseline (rows in recording order), and the rows scored."""
    return wearer_baseline.relative_to_wearers(x, speakers, max(warmup, 1))


def unit_probs(probs: np.ndarray, units: np.ndarray, n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability over each unit's utterance rows; (probs per unit, mask of units that have rows)."""
    out = np.zeros((n_units, probs.shape[1]))
    counts = np.bincount(units, minlength=n_units)
    np.add.at(out, units, probs)
    has = counts > 0
    out[has] /= counts[has, None]
    return out, has


# ------------------------------------------------------------------ references
def svm(x_train: np.ndarray, y_train: np.ndarray, weights: np.ndarray | None = None):
    """A scaled RBF SVM fitted with per-row weights (trainer.balance: class-balanced, and corpus-balanced
    across corpora; inverse class frequencies when None)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if weights is None:
        weights = balanced_sample_weights(y_train, np.zeros(len(y_train)))
    model = make_pipeline(StandardScaler(), SVC(C=1.0, gamma="scale"))
    return model.fit(x_train, y_train, svc__sample_weight=weights)


# ------------------------------------------------------------------ the deployed recipe
def score_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    """Class probabilities from an ONNX model, one row at a time as the edge runs it."""
    from trainer.evaluate import session

    sess = session(path)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(["probs"], {name: x[i : i + 1]})[0] for i in range(len(x))])


@dataclass(frozen=True)
class Prepared:
    """Every utterance of one or several corpora, ready to fold: the model's features relative to their
    speaker's running baseline, the references' features so and z-scored per speaker over the whole recording
    (the oracle's), the rows past their speaker's warm-up, and each row's corpus."""

    rec: Recordings
    corpora: np.ndarray
    normalised: np.ndarray
    reference: np.ndarray
    ceiling: np.ndarray
    scored: np.ndarray

    @classmethod
    def of(cls, rec: Recordings, corpora: np.ndarray, warmup: int) -> Prepared:
        normalised, scored = running(rec.x, rec.speakers, warmup)
        reference, _ = running(rec.reference, rec.speakers, warmup)
        return cls(
            rec,
            corpora,
            normalised,
            reference,
            person_oracle(rec.reference, rec.speakers).astype(np.float32),
            scored,
        )

    def for_training(self) -> Prepared:
        """What score_trained reads (without the recordings' absolute model inputs): less to send to a worker."""
        return replace(self, rec=replace(self.rec, x=self.rec.x[:0]))


def score_trained(
    prep: Prepared,
    train: np.ndarray,
    tests: Sequence[np.ndarray],
    recipe: SpeechRecipe,
    seed: int,
    work: Path,
) -> list[dict[str, dict[str, float]]]:
    """Every classifier trained once on the `train` rows and scored per unit on each mask of `tests`, on the
    test rows past their speaker's warm-up. The deployed model and the references weigh every corpus and
    every class of it the same (trainer.balance), so one corpus's size or label mix does not decide."""
    k = len(QUADRANTS)
    rec, fit_rows = prep.rec, train & prep.scored
    weights = balanced_sample_weights(rec.y[fit_rows], prep.corpora[fit_rows])
    all_weights = balanced_sample_weights(rec.y[train], prep.corpora[train])
    model = recipe.train(prep.normalised[fit_rows], rec.y[fit_rows], prep.corpora[fit_rows], work, seed)
    plain = svm(rec.reference[train], rec.y[train], all_weights)
    running_svm = svm(prep.reference[fit_rows], rec.y[fit_rows], weights)
    ceiling_svm = svm(prep.ceiling[train], rec.y[train], all_weights)
    n_units = len(rec.files)
    out = []
    for test in tests:
        rows = test & prep.scored
        units_scored = np.zeros(n_units, bool)
        units_scored[np.unique(rec.unit[rows])] = True
        truth = rec.unit_y[units_scored]

        def per_unit(
            probs_rows: np.ndarray,
            rows: np.ndarray = rows,
            units_scored: np.ndarray = units_scored,
            truth: np.ndarray = truth,
        ) -> dict[str, float]:
            probs, _ = unit_probs(probs_rows, rec.unit[rows], n_units)
            return scores(truth, probs[units_scored].argmax(axis=1), k)

        out.append(
            {
                "deployed_int8": per_unit(score_onnx(model.int8, prep.normalised[rows])),
                "deployed_fp32": per_unit(score_onnx(model.fp32, prep.normalised[rows])),
                "majority": scores(truth, majority_prediction(rec.y[train], len(truth), k), k),
                "svm": per_unit(np.eye(k)[plain.predict(rec.reference[rows])]),
                "svm-speaker-running": per_unit(np.eye(k)[running_svm.predict(prep.reference[rows])]),
                "svm-speaker-oracle": per_unit(np.eye(k)[ceiling_svm.predict(prep.ceiling[rows])]),
            }
        )
    return out


@dataclass(frozen=True)
class _Trainings:
    """Trainings for a worker (trainer.yardstick.workers): each (number, training rows, test rows) trained once
    and scored on every test."""

    prep: Prepared
    recipe: SpeechRecipe
    seed: int
    work: Path

    def __call__(
        self, job: tuple[int, np.ndarray, Sequence[np.ndarray]]
    ) -> list[dict[str, dict[str, float]]]:
        i, train, tests = job
        return score_trained(self.prep, train, tests, self.recipe, self.seed, self.work / f"training{i}")


def _train_and_score(
    prep: Prepared, trainings: Sequence[Training], recipe: SpeechRecipe, options: YardstickOptions
) -> list[list[dict[str, dict[str, float]]]]:
    """Every training scored on its tests, options.workers at once."""
    with tempfile.TemporaryDirectory(prefix="mmer-yardstick-speech-") as tmp:
        job = _Trainings(prep.for_training(), recipe, options.seed, Path(tmp))
        return run_jobs(
            job, [(i, train, tests) for i, (train, tests) in enumerate(trainings)], options.workers
        )


def _eight_classes(rec: Recordings, reference: np.ndarray, scored: np.ndarray, folds: list) -> dict | None:
    """The running-baseline SVM (eGeMAPSv02) on RAVDESS's 8 original emotions, when every file has a RAVDESS
    name: its UAR beside the published one."""
    codes = []
    for path in rec.files:
        m = RAVDESS.match(path.name)
        if m is None:
            return None
        codes.append(int(m.group(3)) - 1)
    y8 = np.asarray(codes)[rec.unit]
    per_fold = []
    for test_speakers in folds:
        train, test = fold_masks(rec.speakers, test_speakers)
        rows = test & scored
        probs = np.eye(8)[svm(reference[train & scored], y8[train & scored]).predict(reference[rows])]
        units, has = unit_probs(probs, rec.unit[rows], len(rec.files))
        truth = np.asarray(codes)[has]
        per_fold.append(scores(truth, units[has].argmax(axis=1), 8))
    return {"svm-speaker-running": over_folds(per_fold), "published": PUBLISHED_8_CLASS}


def yardstick(folder: Path, options: YardstickOptions) -> dict:
    """Folds by speaker on a labelled speech folder: deployed int8 and fp32, references and majority."""
    recipe = SPEECH.quick() if options.quick else SPEECH
    rec = load_recordings(folder, options.seed)
    folds = person_folds(rec.unit_speaker, options.folds or DEFAULT_FOLDS, options.seed)
    prep = Prepared.of(rec, np.full(len(rec.y), folder.name), recipe.warmup)
    masks = [fold_masks(rec.speakers, test_speakers) for test_speakers in folds]
    results = _train_and_score(prep, [(train, [test]) for train, test in masks], recipe, options)
    per_fold: dict[str, list[dict[str, float]]] = {}
    for i, (test_speakers, (fold,)) in enumerate(zip(folds, results, strict=True)):
        add_fold(per_fold, fold, f"speech fold {i + 1}/{len(folds)} {','.join(map(str, test_speakers))}")
    with threadpool_limits(1):
        eight = None if options.quick else _eight_classes(rec, prep.reference, prep.scored, folds)
    references = {n: over_folds(f) for n, f in per_fold.items() if n.startswith("svm")}
    counts = np.bincount(rec.unit_y, minlength=len(QUADRANTS))
    entry = {
        "unit": UNIT,
        "folds": len(folds),
        "subjects": len(np.unique(rec.unit_speaker)),
        "units": len(rec.files),
        "units_without_speech": len(rec.silent),
        "warmup_utterances_per_speaker": recipe.warmup,
        "class_counts": dict(zip(QUADRANTS.labels, counts.tolist(), strict=True)),
        "recipe": recipe.describe(),
        "majority": over_folds(per_fold["majority"]),
        "deployed_int8": over_folds(per_fold["deployed_int8"]),
        "deployed_fp32": over_folds(per_fold["deployed_fp32"]),
        "references": references,
    }
    if eight is not None:
        entry["eight_classes"] = eight
    return entry


def cross(folders: Sequence[Path], options: YardstickOptions) -> dict:
    """What adding a corpus does (trainer.yardstick.cross): each folder a corpus named by its base name, its
    speakers `<corpus>/<speaker>`, every corpus's people scored by the deployed model and the references
    trained on the other corpora only, and on all of them, on the corpus's own folds by speaker."""
    recipe = SPEECH.quick() if options.quick else SPEECH
    rec, corpora = load_corpora({folder.name: folder for folder in folders}, options.seed)
    prep = Prepared.of(rec, corpora, recipe.warmup)

    def score(trainings: Sequence[Training]) -> list[list[dict[str, dict[str, float]]]]:
        results = _train_and_score(prep, trainings, recipe, options)
        for (train, _), out in zip(trainings, results, strict=True):
            trained_on = ", ".join(
                f"{c} {n}" for c, n in zip(*np.unique(corpora[train], return_counts=True), strict=True)
            )
            for j, fold in enumerate(out):
                print_fold(f"speech cross, trained on {trained_on} utterances, test {j + 1}/{len(out)}", fold)
        return results

    return cross_section(rec.speakers, corpora, options.folds or DEFAULT_FOLDS, options.seed, score)


def score_bundle(bundle_dir: Path, folder: Path, public_key: Path | None = None, seed: int = 7) -> Scored:
    """A speech bundle on a labelled folder, exactly as the edge scores it: utterances found by the edge's
    segmenter, the bundle's wearer baseline updated in recording order with its warm-up unscored, the int8
    model run one utterance at a time; one row per recording (the mean over its utterances)."""
    key = public_key or bundle_dir.parent / "keys" / "trainer.pub"
    bundle = read_bundle(bundle_dir, load_public_key(key))
    if bundle.manifest.modality != "speech":
        raise ValueError(f"{bundle_dir}: a {bundle.manifest.modality} bundle, not speech")
    rec = load_recordings(folder, seed)
    x, rows = rec.x, np.ones(len(rec.y), bool)
    wanted = wearer_baseline.requested(bundle.manifest.preprocessing.params)
    if wanted is not None:
        levels = wearer_baseline.with_levels(bundle.manifest.preprocessing.params)
        x, rows = wearer_baseline.relative_to_wearers(rec.x, rec.speakers, *wanted, levels=levels)
    probs = score_onnx(bundle.file("model"), x[rows])
    labels = tuple(bundle.manifest.taxonomy.labels)
    units, has = unit_probs(probs, rec.unit[rows], len(rec.files))
    return Scored(UNIT, labels, rec.unit_y[has], units[has], rec.unit_speaker[has])
