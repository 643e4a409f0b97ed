"""Faces yardstick: folds by person, one unit per image, the deployed int8 bundle beside classical references.

Any `faces:` folder the loader reads (FER2013 csv, `<label>/<person>_<name>.png`, or a `persons.csv`; see
trainer.loaders.faces) gets the same report. Every image goes through the edge's own preprocessing (face
detection and eye alignment); images without a detected face are left out of every classifier alike and
counted. Per fold the deployed recipe (trainer.face_recipe: the small CNN trained on augmented crops or the
kernel model, whichever the validation persons prefer; class-balanced, exported and quantized as the
pipeline does) is trained on the other persons and its int8 model scored one image at a time. References
on the same crops and folds: PCA + class-balanced RBF SVM on pixels, on HOG gradients (OpenCV's
HOGDescriptor), on both; the same on both minus the mean of the person's images met so far (in a seeded
order, as a camera meets them), and minus each person's mean over all of that person's images (`-oracle`:
a device sees one face at a time and has no such statistics); majority.
The references run single-threaded (threadpool_limits(1)): multi-threaded BLAS on a shared small machine
made PCA + SVM many times slower.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from trainer.data import Dataset
from trainer.face_kernel import SVM_C, pca_components
from trainer.kind_recipes import recipe
from trainer.loaders.faces import load_faces
from trainer.yardstick.deployed import quick_or_full, score_onnx, train_deployed
from trainer.yardstick.folds import fold_masks, person_folds
from trainer.yardstick.options import YardstickOptions
from trainer.yardstick.scored import Scored
from trainer.yardstick.scores import add_fold, majority_prediction, over_folds, scores

UNIT = "frame"
DEFAULT_FOLDS = 5


def hog(x: np.ndarray) -> np.ndarray:
    """HOG of each (S, S, 1) crop in [0, 1]: 8x8-pixel cells, 2x2-cell blocks sliding by a cell, 9 orientations."""
    import cv2

    size = x.shape[1]
    descriptor = cv2.HOGDescriptor((size, size), (16, 16), (8, 8), (8, 8), 9)
    return np.stack([descriptor.compute(np.rint(c[..., 0] * 255).astype(np.uint8)).ravel() for c in x])


def per_person_oracle(features: np.ndarray, persons: np.ndarray) -> np.ndarray:
    """Each person's rows minus that person's mean over all of their images (the person's "mean face")."""
    out = features.astype(np.float64).copy()
    for person in np.unique(persons):
        rows = persons == person
        out[rows] -= out[rows].mean(axis=0)
    return out


def pca_svm(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    """Standardise, PCA (whitened), class-balanced RBF SVM: the textbook face-expression baseline."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = make_pipeline(
        StandardScaler(),
        PCA(pca_components(*x_train.shape), whiten=True, random_state=seed),
        SVC(C=SVM_C, gamma="scale", class_weight="balanced"),
    )
    model.fit(x_train, y_train)
    return model.predict(x_test)


def per_person_running(features: np.ndarray, persons: np.ndarray, seed: int) -> np.ndarray:
    """Each row minus the mean of its person's images met so far (this one included), each person's images
    met in a seeded random order: what a camera can know of its wearer's "mean face" while it sees one face
    at a time, in no order of emotion (the -oracle reference subtracts the mean of all of them)."""
    out = features.astype(np.float64).copy()
    order = np.random.default_rng(seed).permutation(len(features))
    for person in np.unique(persons):
        rows = order[persons[order] == person]
        seen = np.arange(1, len(rows) + 1)[:, None]
        out[rows] -= np.cumsum(out[rows], axis=0) / seen
    return out


def reference_features(data: Dataset, seed: int) -> dict[str, np.ndarray]:
    """Each reference's feature matrix over all images (fold-independent, computed once)."""
    pixels = data.x.reshape(len(data), -1).astype(np.float64)
    gradients = hog(data.x).astype(np.float64)
    both = np.hstack([pixels, gradients])
    return {
        "pca-svm-pixels": pixels,
        "pca-svm-hog": gradients,
        "pca-svm-pixels+hog": both,
        "pca-svm-pixels+hog-person-running": per_person_running(both, data.subjects, seed),
        "pca-svm-pixels+hog-person-oracle": per_person_oracle(both, data.subjects),
    }


def _fold(
    data: Dataset,
    features: dict[str, np.ndarray],
    test_persons: np.ndarray,
    options: YardstickOptions,
    work: Path,
) -> dict[str, dict[str, float]]:
    k = len(data.taxonomy)
    train_mask, test_mask = fold_masks(data.subjects, test_persons)
    train, test = data.take(train_mask), data.take(test_mask)
    trained = train_deployed(
        train,
        work,
        options.seed,
        *quick_or_full(options, recipe("faces").epochs),
        recipe("faces").class_weights,
    )
    out = {
        "deployed_int8": {
            **scores(test.y, score_onnx(trained.int8, test.x).argmax(axis=1), k),
            "kernel_model": float(trained.kind == "kernel"),
        },
        "deployed_fp32": scores(test.y, score_onnx(trained.fp32, test.x).argmax(axis=1), k),
        "majority": scores(test.y, majority_prediction(train.y, len(test), k), k),
    }
    with threadpool_limits(1):
        for name, f in features.items():
            out[name] = scores(test.y, pca_svm(f[train_mask], train.y, f[test_mask], options.seed), k)
    return out


def yardstick(folder: Path, options: YardstickOptions) -> dict:
    """Folds by person on a labelled face folder: deployed int8 and fp32, references and majority."""
    data = load_faces(folder)
    folds = person_folds(data.subjects, options.folds or DEFAULT_FOLDS, options.seed)
    features = reference_features(data, options.seed)
    per_fold: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mmer-yardstick-faces-") as tmp:
        for i, test_persons in enumerate(folds):
            fold = _fold(data, features, test_persons, options, Path(tmp) / f"fold{i}")
            add_fold(per_fold, fold, f"faces fold {i + 1}/{len(folds)}")
    counts = np.bincount(data.y, minlength=len(data.taxonomy))
    return {
        "unit": UNIT,
        "folds": len(folds),
        "subjects": len(np.unique(data.subjects)),
        "units": len(data),
        "data": data.description,
        "class_counts": dict(zip(data.taxonomy.labels, counts.tolist(), strict=True)),
        "majority": over_folds(per_fold["majority"]),
        "deployed_int8": over_folds(per_fold["deployed_int8"]),
        "deployed_fp32": over_folds(per_fold["deployed_fp32"]),
        "references": {name: over_folds(per_fold[name]) for name in features},
    }


def score_bundle(bundle_dir: Path, folder: Path, public_key: Path | None = None) -> Scored:
    """An image bundle on a labelled face folder, exactly as the edge scores it: the shared preprocessing
    (faces found and aligned; images without one are not scored, as the edge scores no such frame), the
    int8 model one image at a time; one row per image with a face."""
    from mmer_core.bundle import load_public_key, read_bundle

    key = public_key or bundle_dir.parent / "keys" / "trainer.pub"
    bundle = read_bundle(bundle_dir, load_public_key(key))
    if bundle.manifest.modality != "image":
        raise ValueError(f"{bundle_dir}: a {bundle.manifest.modality} bundle, not image")
    data = load_faces(folder)
    probs = score_onnx(bundle.file("model"), data.x)
    return Scored(UNIT, tuple(bundle.manifest.taxonomy.labels), data.y, probs, data.subjects)
