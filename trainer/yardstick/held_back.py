"""Classical references trained on every person of some labelled folders and scored on a bundle's held-back
people, on exactly the units the bundle was scored on (`mmer trainer evaluate --references-from`).

A bundle is worth deploying only if it beats what a textbook model trained on the same people does on people
neither has seen. The references are the yardstick's own non-oracle ones (trainer.yardstick.speech, .e4,
.faces), trained on all persons of the given folders (several folders are several corpora, named and
weighed as the pipeline takes them), and the training persons' most frequent class. They are scored on the
same units as the bundle: the same utterances past each speaker's warm-up (the bundle's warm-up, the
running-baseline references starting from what a device has seen of the speaker so far), the same windows
the edge accepts past each wearer's warm-up, the same frames with a face.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mmer_core import wearer_baseline
from mmer_core.speech_files import find_speech_files
from mmer_core.taxonomy import QUADRANTS
from trainer.yardstick.scored import Scored
from trainer.yardstick.scores import majority_prediction, scores

MAJORITY = "majority"


def persons(kind: str, folder: Path) -> set[str]:
    """The persons of a labelled folder as its loader names them; ValueError when it holds none."""
    if kind == "speech":
        found = {f.speaker for f in find_speech_files(folder)}
    elif kind in ("e4", "wesad"):
        from trainer.yardstick.e4_windows import labelled_sessions

        found = {p.stem if p.is_file() else p.name for p in labelled_sessions(folder)}
    elif kind == "faces":
        from trainer.loaders.faces import load_faces

        found = set(load_faces(folder).subjects.tolist())
    else:
        raise _no_references(kind)
    if not found:
        raise ValueError(f"{kind}:{folder}: no persons found")
    return found


def check_apart(kind: str, test_folder: Path, reference_folders: Sequence[Path]) -> int:
    """The number of training persons, after checking that no person of the reference folders is one of the
    test folder's (references trained on test people would flatter them); ValueError naming them if so."""
    tested = persons(kind, test_folder)
    trained: set[str] = set()
    for folder in reference_folders:
        mine = persons(kind, folder)
        shared = sorted(mine & tested)
        if shared:
            raise ValueError(
                f"--references-from {kind}:{folder} holds {len(shared)} of the persons of --data "
                f"{kind}:{test_folder} ({', '.join(shared)}): references must never be trained on test people"
            )
        trained |= mine
    return len(trained)


def held_back_references(
    kind: str,
    scored: Scored,
    params: Mapping[str, float],
    reference_folders: Sequence[Path],
    test_folder: Path,
    seed: int = 7,
) -> dict[str, dict[str, float]]:
    """Each reference's accuracy, macro-F1 and UAR on the units of `scored` (the bundle's report on
    test_folder, whose preprocessing params are `params`), trained on every person of reference_folders.

    scikit-learn runs with BLAS limited to one thread (threadpool_limits): on a small shared machine a
    multi-threaded OpenBLAS made these small SVMs many times slower, not faster."""
    score = _SCORERS.get(kind)
    if score is None:
        raise _no_references(kind)
    with threadpool_limits(1):
        predictions, truth = score(scored, params, reference_folders, test_folder, seed)
    if not np.array_equal(truth, scored.y):
        raise ValueError(
            f"{kind}:{test_folder}: the references' units are not the bundle's (the folder changed?)"
        )
    k = len(scored.labels)
    return {
        name: {m: round(v, 4) for m, v in scores(truth, pred, k).items()}
        for name, pred in predictions.items()
    }


def _corpora(reference_folders: Sequence[Path]) -> dict[str, Path]:
    from trainer.loaders import corpus_names

    return dict(zip(corpus_names(reference_folders), reference_folders, strict=True))


def _check_quadrants(scored: Scored) -> None:
    if tuple(scored.labels) != tuple(QUADRANTS.labels):
        raise ValueError(
            f"the bundle's labels {list(scored.labels)} are not the loaders' {list(QUADRANTS.labels)}"
        )


def _speech(
    scored: Scored, params: Mapping[str, float], folders: Sequence[Path], test_folder: Path, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per recording: the yardstick's SVMs on eGeMAPSv02 functionals, plain and relative to the speaker's
    running baseline, trained with every corpus and class of it weighing the same."""
    from trainer.balance import balanced_sample_weights
    from trainer.loaders.speech import load_corpora, load_recordings
    from trainer.recipes import SPEECH
    from trainer.yardstick.speech import running, svm, unit_probs

    _check_quadrants(scored)
    wanted = wearer_baseline.requested(params)
    warmup = SPEECH.warmup if wanted is None else wanted[0]
    train, corpora = load_corpora(_corpora(folders), seed)
    train_running, fit = running(train.reference, train.speakers, warmup)
    plain = svm(train.reference, train.y, balanced_sample_weights(train.y, corpora))
    relative = svm(train_running[fit], train.y[fit], balanced_sample_weights(train.y[fit], corpora[fit]))

    test = load_recordings(test_folder, seed)
    test_running, rows = running(test.reference, test.speakers, warmup)
    if wanted is None:  # the bundle scores every utterance
        rows = np.ones(len(test.y), bool)
    k = len(QUADRANTS)

    def per_unit(pred: np.ndarray) -> np.ndarray:
        units, has = unit_probs(np.eye(k)[pred], test.unit[rows], len(test.files))
        return units[has].argmax(axis=1)

    truth = test.unit_y[np.bincount(test.unit[rows], minlength=len(test.files)) > 0]
    return {
        "svm": per_unit(plain.predict(test.reference[rows])),
        "svm-speaker-running": per_unit(relative.predict(test_running[rows])),
        MAJORITY: majority_prediction(train.unit_y, len(truth), k),
    }, truth


def _wrist(
    scored: Scored, params: Mapping[str, float], folders: Sequence[Path], test_folder: Path, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per window: the yardstick's random forests on 60 s HR/HRV, EDA and temperature statistics, plain and
    relative to the wearer's running baseline, trained on every labelled window of the training wearers."""
    from trainer.wrist_recipe import WRIST
    from trainer.yardstick.e4 import Rows, edge_windows, forest_predict
    from trainer.yardstick.e4_windows import labelled_sessions, session_windows

    _check_quadrants(scored)
    train = Rows([session_windows(f) for folder in folders for f in labelled_sessions(folder)], WRIST)
    sessions = [session_windows(f) for f in labelled_sessions(test_folder)]
    test = Rows(sessions, WRIST)
    rows = np.concatenate([edge_windows(s, params)[1] for s in sessions])
    labelled = train.y >= 0
    truth = test.y[rows]
    k = len(QUADRANTS)
    return {
        "rf-stats": forest_predict(train.stats[labelled], train.y[labelled], test.stats[rows], False),
        "rf-stats-wearer-running": forest_predict(
            train.stats_running[labelled], train.y[labelled], test.stats_running[rows], False
        ),
        MAJORITY: majority_prediction(train.y[labelled], len(truth), k),
    }, truth


def _faces(
    scored: Scored, params: Mapping[str, float], folders: Sequence[Path], test_folder: Path, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per frame with a face: the yardstick's PCA + RBF SVMs on pixels, HOG gradients and both."""
    from trainer.loaders import load
    from trainer.loaders.faces import load_faces
    from trainer.yardstick.faces import pca_svm, reference_features

    train = load([("faces", folder) for folder in folders], "image")
    test = load_faces(test_folder)
    if train.taxonomy.labels != test.taxonomy.labels:
        raise ValueError(
            f"faces: the reference folders' labels {train.taxonomy.labels} are not the test set's"
        )
    train_features, test_features = reference_features(train, seed), reference_features(test, seed)
    out = {
        name: pca_svm(f, train.y, test_features[name], seed)
        for name, f in train_features.items()
        if not name.endswith("-oracle")
    }
    out[MAJORITY] = majority_prediction(train.y, len(test), len(test.taxonomy))
    return out, test.y


# the data kinds whose yardstick has classical references to train here, and how each is scored
_SCORERS = {"speech": _speech, "e4": _wrist, "wesad": _wrist, "faces": _faces}


def _no_references(kind: str) -> ValueError:
    return ValueError(f"no classical references for {kind} data (they exist for {', '.join(_SCORERS)})")
