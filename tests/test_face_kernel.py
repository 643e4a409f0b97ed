"""The face kernel model (the PCA + SVM reference inside one graph) and the face recipe's choice between it
and the CNN."""

from __future__ import annotations

import numpy as np
import pytest

from mmer_core.taxonomy import QUADRANTS
from trainer.data import Dataset
from trainer.face_kernel import (
    BINS,
    build_feature_model,
    build_kernel_model,
    fit_kernel,
    pca_components,
    vote_matrices,
)
from trainer.face_recipe import fit_faces

SIZE = 48
PIXELS = SIZE * SIZE


def hog_part(features: np.ndarray) -> np.ndarray:
    """The HOG blocks of feature rows: (N, blocks, 4 cells, BINS)."""
    return features[:, PIXELS:].reshape(len(features), -1, 4, BINS)


def test_the_graphs_gradients_vote_for_an_edges_orientation() -> None:
    """A vertical edge (dark left, bright right) has horizontal gradients: bin 0 (0 degrees); a horizontal
    edge has vertical ones: the bins either side of 90 degrees (80 and 100). Pixels pass through as they are."""
    vertical = np.zeros((1, SIZE, SIZE, 1), np.float32)
    vertical[:, :, SIZE // 2 :] = 1.0
    horizontal = np.transpose(vertical, (0, 2, 1, 3)).copy()
    model = build_feature_model((SIZE, SIZE, 1), "face")
    features = model.predict(np.concatenate([vertical, horizontal]), verbose=0)
    assert features.shape == (2, PIXELS + 5 * 5 * 4 * BINS)
    np.testing.assert_array_equal(features[:, :PIXELS], np.concatenate([vertical, horizontal]).reshape(2, -1))
    per_bin = hog_part(features).sum(axis=(1, 2))
    assert per_bin[0].argmax() == 0 and per_bin[0][0] > 0.9 * per_bin[0].sum()
    assert set(np.argsort(per_bin[1])[-2:]) == {4, 5} and per_bin[1][[4, 5]].sum() > 0.9 * per_bin[1].sum()
    norms = np.linalg.norm(hog_part(features).reshape(2, 25, -1), axis=2)
    assert np.all((norms < 1e-2) | (np.abs(norms - 1) < 1e-3)), "each block is L2-normalised (or empty)"


def test_vote_matrices_give_each_pair_to_its_two_classes() -> None:
    wins, signs = vote_matrices(3)  # pairs (0, 1), (0, 2), (1, 2)
    np.testing.assert_array_equal(wins, [[1, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(signs, [[1, -1, 0], [1, 0, -1], [0, 1, -1]])


def blob_faces(persons: int, per_class: int, seed: int, left_only: bool = False) -> Dataset:
    """Crops whose class is the height at which a bright blob sits (one band of rows per class), each person
    with their own brightness and noise: easy for an RBF SVM on pixels, beyond a CNN trained for one epoch.
    The blob spans the crop's middle, so a mirrored crop shows the same class; `left_only` puts it in the
    left half."""
    rng = np.random.default_rng(seed)
    xs, ys, subjects = [], [], []
    columns = slice(4, 20) if left_only else slice(12, 36)
    for p in range(persons):
        level = rng.uniform(0.2, 0.5)
        for c in range(4):
            for _ in range(per_class):
                img = np.full((SIZE, SIZE), level) + rng.normal(0, 0.05, (SIZE, SIZE))
                img[c * 12 + 2 : c * 12 + 10, columns] += 0.4
                xs.append(np.clip(img, 0, 1)[..., None])
                ys.append(c)
                subjects.append(f"p{p}")
    return Dataset(
        "image", np.array(xs, np.float32), np.array(ys), np.array(subjects), np.zeros(len(ys)), "blob faces"
    )


def test_the_kernel_model_answers_as_scikit_learns_svm_on_the_same_features() -> None:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    data = blob_faces(persons=6, per_class=5, seed=1)
    train, test = data.take(data.subjects != "p5"), data.take(data.subjects == "p5")
    features_model = build_feature_model((SIZE, SIZE, 1), "face")
    f_train = features_model.predict(train.x, verbose=0).astype(np.float64)
    f_test = features_model.predict(test.x + np.float32(0.1), verbose=0).astype(np.float64)
    fit = fit_kernel(f_train, train.y, 0, pca_components(*f_train.shape))
    model = build_kernel_model(features_model, fit, len(QUADRANTS))
    probs = model.predict(test.x + np.float32(0.1), verbose=0)
    reference = make_pipeline(
        StandardScaler(),
        PCA(fit.projection.shape[1], whiten=True, random_state=0),
        SVC(C=10.0, gamma="scale", class_weight="balanced"),
    ).fit(f_train, train.y)
    np.testing.assert_array_equal(probs.argmax(axis=1), reference.predict(f_test))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_the_face_recipe_ships_what_the_validation_people_prefer(tmp_path) -> None:
    from trainer.export import export_onnx
    from trainer.face_kernel import train_kernel_model

    data = blob_faces(persons=8, per_class=4, seed=2)
    val_people = np.isin(data.subjects, ["p6", "p7"])
    train, val = data.take(~val_people), data.take(val_people)
    logged: list[str] = []
    chosen = fit_faces(train, val, 1, 0, None, logged.append)
    assert chosen.kind == "kernel" and chosen.info["face_model"] == "kernel"
    assert chosen.info["val_macro_f1_kernel"] > 0.9 > chosen.info["val_macro_f1_cnn"]
    assert any("ships the kernel" in line for line in logged)
    shipped = fit_faces(data, None, 1, 0, None, logged.append, kind="kernel")
    assert shipped.kind == "kernel"
    export_onnx(shipped.model, tmp_path / "kernel.onnx", "face", data.x[:32])  # raises unless ONNX agrees
    with pytest.raises(ValueError, match="needs its kind"):
        fit_faces(data, None, 1, 0, None, logged.append)
    logged.clear()
    many = fit_faces(train, val, 1, 0, None, logged.append, kernel_max_crops=len(train) - 1)
    assert many.kind == "cnn" and many.info["face_model"] == "cnn" and "val_macro_f1_kernel" not in many.info
    assert any("the CNN, no kernel model" in line for line in logged)
    assert not any("kernel model:" in line for line in logged), "no kernel model was fitted"
    only_three = data.take(data.y < 3)  # a class no training face has is never answered
    model = train_kernel_model(only_three.x, only_three.y, len(QUADRANTS), "face", 0)
    assert model.predict(data.x[data.y == 3], verbose=0).argmax(axis=1).max() < 3


def test_the_kernel_model_reads_a_mirrored_face_as_the_face() -> None:
    """Trained on crops whose blob is always in the left half, the kernel model also learns their mirror
    images, so it answers crops with the blob in the right half by the blob's height as well; trained on
    the crops alone it scored 0.1 on them (chance is 0.25)."""
    from trainer.face_kernel import train_kernel_model

    train = blob_faces(persons=6, per_class=5, seed=3, left_only=True)
    test = blob_faces(persons=2, per_class=5, seed=4, left_only=True)
    model = train_kernel_model(train.x, train.y, len(QUADRANTS), "face", 0)
    mirrored = model.predict(test.x[:, :, ::-1], verbose=0).argmax(axis=1)
    assert np.mean(mirrored == test.y) > 0.9


def test_int8_quantization_keeps_the_graphs_hog_features(tmp_path) -> None:
    """The feature stage quantized as every model is (trainer.quantize, "max") gives the float HOG blocks to
    within 2 % (relative L2 error) on generated faces; quantizing the projection on the bins' directions as a
    matrix product cost about 10 % and 2.6 points of accuracy."""
    import onnxruntime as ort

    from testkit.face_folders import write_face_folder
    from trainer.export import export_onnx
    from trainer.loaders.faces import load_faces
    from trainer.quantize import quantize

    crops = load_faces(write_face_folder(tmp_path / "faces", persons=3, per_label=4)).x
    model = build_feature_model((SIZE, SIZE, 1), "face")
    fp32 = export_onnx(model, tmp_path / "features.onnx", model.input.name, crops[:8])
    int8 = quantize(fp32, tmp_path / "features.int8.onnx", "max", crops)

    def hog_of(path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: crops})[0][:, PIXELS:]

    exact, quantized = hog_of(fp32), hog_of(int8)
    assert np.linalg.norm(quantized - exact) / np.linalg.norm(exact) < 0.02


def test_int8_quantization_keeps_the_kernel_models_probabilities(tmp_path) -> None:
    """Quantized as every model is ("max"), the kernel model's probabilities stay within 0.002 of float on
    average over generated faces; with the SVM's kernel and decisions as (quantized) matrix products they
    moved by 0.0027 here and by 0.0037 on ten persons, and 5 % of a generated fold's faces changed class."""
    from testkit.face_folders import write_face_folder
    from trainer.export import export_onnx
    from trainer.face_kernel import train_kernel_model
    from trainer.loaders.faces import load_faces
    from trainer.quantize import quantize
    from trainer.yardstick.deployed import score_onnx

    data = load_faces(write_face_folder(tmp_path / "faces", persons=6, per_label=5))
    test = data.subjects == data.subjects[0]
    model = train_kernel_model(data.x[~test], data.y[~test], len(QUADRANTS), "face", 0)
    fp32 = export_onnx(model, tmp_path / "kernel.onnx", "face", data.x[:8])
    int8 = quantize(fp32, tmp_path / "kernel.int8.onnx", "max", data.x[~test])
    exact, quantized = score_onnx(fp32, data.x), score_onnx(int8, data.x)
    np.testing.assert_array_equal(quantized.argmax(axis=1), exact.argmax(axis=1))
    assert np.abs(quantized - exact).mean() < 0.002
