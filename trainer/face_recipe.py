"""The face recipe: the small CNN on augmented crops or the kernel model (trainer.face_kernel), whichever
scores better on the validation people.

Which one wins depends on the face set: with many people and pictures the CNN learns what PCA + SVM cannot;
with tens of people a CNN from scratch can lose to it by many points. The choice is made on people neither
model learned from (the split's validation people), by macro-F1, and the model trained on every person for
the bundle is of the kind the split chose. The CNN's validation figure is a little optimistic (its early
stopping watched the same people), so the kernel model is chosen only when it is better. Beyond
KERNEL_MAX_CROPS training crops only the CNN is trained: the SVM's fit grows with the square of its rows (the
crops and their mirror images) and the model with its support vectors, while so many faces are where the
CNN does best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.data import Dataset

KINDS = ("cnn", "kernel")
KERNEL_MAX_CROPS = 5000


@dataclass(frozen=True)
class FaceModel:
    """A trained face model, its kind and what its training did (epochs, validation figures)."""

    model: object
    kind: str
    info: dict[str, float | str]


def macro_f1(y: np.ndarray, predicted: np.ndarray, k: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, predicted, labels=list(range(k)), average="macro", zero_division=0))


def _cnn(train: Dataset, val: Dataset | None, epochs: int, seed: int, sample_weight, log) -> FaceModel:
    from trainer.augment import augment_faces
    from trainer.models import train_on

    model, info = train_on("image", train, val, epochs, seed, log, sample_weight, augment_faces)
    return FaceModel(model, "cnn", info)


def _kernel(train: Dataset, seed: int, log) -> FaceModel:
    from mmer_core.modalities import get_spec
    from trainer.face_kernel import train_kernel_model

    model = train_kernel_model(train.x, train.y, len(train.taxonomy), get_spec("image").input_name, seed)
    log(
        f"[image] kernel model: pixels + HOG, whitened PCA to {model.get_layer('pca').units} components, RBF SVM"
    )
    return FaceModel(model, "kernel", {"epochs": 0, "best_epoch": 0})


def fit_faces(
    train: Dataset,
    val: Dataset | None,
    epochs: int,
    seed: int,
    sample_weight: np.ndarray | None,
    log,
    kind: str | None = None,
    kernel_max_crops: int = KERNEL_MAX_CROPS,
) -> FaceModel:
    """With validation people: both models, the one with the better validation macro-F1 (the CNN on a tie;
    the CNN alone beyond `kernel_max_crops` training crops). Without (the shipped model, trained on every
    person): the `kind` the split chose, the CNN for `epochs`."""
    if val is None:
        if kind not in KINDS:
            raise ValueError(f"a face model trained without validation people needs its kind, one of {KINDS}")
        return (
            _kernel(train, seed, log)
            if kind == "kernel"
            else _cnn(train, None, epochs, seed, sample_weight, log)
        )
    cnn = _cnn(train, val, epochs, seed, sample_weight, log)
    if len(train) > kernel_max_crops:
        log(f"[image] {len(train)} training crops, more than {kernel_max_crops}: the CNN, no kernel model")
        return FaceModel(cnn.model, cnn.kind, {**cnn.info, "face_model": cnn.kind})
    k = len(train.taxonomy)
    kernel = _kernel(train, seed, log)
    scores = {}
    for candidate in (cnn, kernel):
        predicted = candidate.model.predict(val.x, batch_size=32, verbose=0).argmax(axis=1)
        scores[candidate.kind] = macro_f1(val.y, predicted, k)
    chosen = kernel if scores["kernel"] > scores["cnn"] else cnn
    log(
        f"[image] validation people's macro-F1: CNN {scores['cnn']:.3f}, kernel model {scores['kernel']:.3f}: "
        f"ships the {chosen.kind}"
    )
    info = {**chosen.info, "face_model": chosen.kind, **{f"val_macro_f1_{n}": s for n, s in scores.items()}}
    return FaceModel(chosen.model, chosen.kind, info)
