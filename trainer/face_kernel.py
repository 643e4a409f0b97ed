"""A face model that is the classical reference inside one graph: oriented gradients and pixels of the aligned
crop, standardised, whitened PCA and a class-balanced RBF SVM, fitted by scikit-learn and run by the edge as
any ONNX model.

On face sets of tens of people a small CNN trained from scratch can lose to PCA + SVM on the same crops; this
model is that reference, so the face recipe (trainer.face_recipe) can ship whichever of the two its
validation people prefer. The gradient features are HOG's (8x8-pixel cells, 9 unsigned orientations, 2x2-cell
blocks sliding by a cell, L2-normalised), computed by fixed convolutions so that the trainer and the edge get
them from the same graph. The SVM's one-vs-one decisions become scores as scikit-learn's "ovr" decision
function makes them (votes plus bounded confidences), with each vote a steep sigmoid instead of a step so that
ONNX and Keras agree everywhere; a softmax turns the scores into probabilities. It learns from every training
crop and its mirror image (an expression reads the same mirrored), the textbook augmentation for face
expression: on generated face sets, 5 folds by person, it raised PCA + SVM by 0.3 to 1.3 points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.tf_setup import import_tf

CELL = 8
BINS = 9
PCA_COMPONENTS = 100  # at most; a quarter of the training images when fewer (see pca_components)
SVM_C = 10.0
VOTE_STEEPNESS = 10.0  # a one-vs-one decision of +-0.5 (half the margin) is a 0.99 vote
EPS = 1e-6


def pca_components(images: int, features: int) -> int:
    """Whitened components far fewer than images: whitening as many components as images spreads noise as
    widely as expression, and the RBF kernel no longer tells them apart."""
    return max(1, min(PCA_COMPONENTS, images // 4, features))


@dataclass(frozen=True)
class KernelFit:
    """What scikit-learn fitted, as the graph's constants: standardising, whitened PCA, the RBF SVM."""

    mean: np.ndarray
    scale: np.ndarray
    projection: np.ndarray  # (features, components): standardised features -> whitened components
    offset: np.ndarray  # (components,)
    support: np.ndarray  # (n_support, components)
    gamma: float
    pair_coef: np.ndarray  # (n_support, pairs): each support vector's weight in each one-vs-one decision
    intercept: np.ndarray  # (pairs,)
    classes: np.ndarray  # the class index of each SVM class, in the SVM's order


def fit_kernel(features: np.ndarray, y: np.ndarray, seed: int, components: int) -> KernelFit:
    """Standardise, whiten with PCA to `components` and fit a class-balanced RBF SVM (the faces yardstick's
    reference)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # multi-threaded BLAS made a small PCA + SVM many times slower on 2 cores
        scaler = StandardScaler().fit(features)
        z = scaler.transform(features)
        pca = PCA(components, whiten=True, random_state=seed).fit(z)
        w = pca.transform(z)
        svm = SVC(C=SVM_C, gamma="scale", class_weight="balanced").fit(w, y)
    whiten = 1.0 / np.sqrt(pca.explained_variance_)
    projection = pca.components_.T * whiten
    return KernelFit(
        mean=scaler.mean_,
        scale=1.0 / scaler.scale_,
        projection=projection,
        offset=-(pca.mean_ @ projection),
        support=svm.support_vectors_,
        gamma=float(svm._gamma),
        pair_coef=_pair_coefficients(svm),
        intercept=svm.intercept_,
        classes=svm.classes_,
    )


def _pair_coefficients(svm) -> np.ndarray:
    """libsvm's dual coefficients as one column per class pair (i < j, in scikit-learn's order): decision of
    pair (i, j) = K(x, support) @ column + intercept, > 0 for class i."""
    k = len(svm.classes_)
    starts = np.concatenate([[0], np.cumsum(svm.n_support_)])
    coef = np.zeros((len(svm.support_vectors_), k * (k - 1) // 2))
    p = 0
    for i in range(k):
        for j in range(i + 1, k):
            si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            coef[si, p] = svm.dual_coef_[j - 1, si]
            coef[sj, p] = svm.dual_coef_[i, sj]
            p += 1
    return coef


def vote_matrices(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, k) matrices: `wins` gives class i pair (i, j)'s vote and class j its complement's; `signs` adds a
    pair's decision to class i's confidence and takes it from class j's."""
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    wins, signs = np.zeros((len(pairs), k)), np.zeros((len(pairs), k))
    for p, (i, j) in enumerate(pairs):
        wins[p, i], signs[p, i], signs[p, j] = 1.0, 1.0, -1.0
    return wins, signs


def build_feature_model(input_shape: tuple[int, ...], input_name: str):
    """Crops (S, S, 1) in [0, 1] -> pixels then HOG blocks, one row per crop; fixed weights only."""
    import keras
    from keras import layers, ops

    size = input_shape[0]
    angles = np.arange(BINS) * np.pi / BINS
    directions = np.stack([np.cos(angles), np.sin(angles)]).astype("float32")  # (2, BINS)
    spread = float(np.cos(np.pi / BINS))  # a gradient votes for the bins within one bin's width of its angle
    cells = size // CELL
    # each 2x2 block of cells: one output channel per (cell offset, bin)
    gather = np.zeros((2, 2, BINS, 4 * BINS), "float32")
    for dy in range(2):
        for dx in range(2):
            for b in range(BINS):
                gather[dy, dx, b, (dy * 2 + dx) * BINS + b] = 1.0

    class OrientedGradients(layers.Layer):
        """Per pixel, the gradient magnitude's share in each orientation bin (HOG's votes, smooth in angle).
        The projection on the bins' directions is written as products and sums, not a matrix product: int8
        quantization (which takes matrix products) turned the many small gradients into a few steps, and the
        block normalisation then magnified the error (2.6 points on generated faces, 0 in float)."""

        def call(self, t):
            gx = ops.pad(t[:, :, 2:, :] - t[:, :, :-2, :], ((0, 0), (0, 0), (1, 1), (0, 0)))
            gy = ops.pad(t[:, 2:, :, :] - t[:, :-2, :, :], ((0, 0), (1, 1), (0, 0), (0, 0)))
            magnitude = ops.sqrt(gx * gx + gy * gy + EPS)
            along = ops.abs(gx * directions[0] + gy * directions[1])
            return ops.relu(along - spread * magnitude) / (1.0 - spread)

    class BlockNormalise(layers.Layer):
        """Each block's 36 values over their L2 norm (lighting changes the gradients' size, not their shape)."""

        def call(self, t):
            return t / ops.sqrt(ops.sum(t * t, axis=-1, keepdims=True) + EPS)

    inputs = keras.Input(shape=input_shape, name=input_name)
    votes = OrientedGradients(name="oriented_gradients")(inputs)
    histograms = layers.AveragePooling2D(CELL, name="cells")(votes)
    blocks = layers.Conv2D(4 * BINS, 2, use_bias=False, trainable=False, name="blocks")
    grouped = blocks(histograms)
    blocks.set_weights([gather])
    hog = layers.Flatten()(BlockNormalise(name="block_norm")(grouped))
    pixels = layers.Flatten()(inputs)
    features = layers.Concatenate(name="features")([pixels, hog])
    assert cells >= 2, f"crops of {size} px have fewer than 2 cells of {CELL} px"
    return keras.Model(inputs, features, name="face_features")


def build_kernel_model(features_model, fit: KernelFit, n_classes: int, name: str = "mmer_image"):
    """features_model's output through the fitted standardising, PCA and SVM, to class probabilities.

    Only the PCA is a matrix product (the one int8 quantization takes); the SVM after it is written as
    products and sums, which stay float: quantized, the kernel's and the decisions' matrix products moved
    5 % of a generated fold's faces across a margin, and in float the SVM costs a few multiply-adds per
    support vector and component. Intermediates are (batch, support vectors, components): score large sets
    in batches of tens."""
    import keras
    from keras import layers, ops

    wins, signs = vote_matrices(len(fit.classes))
    # the SVM's classes may be fewer than the taxonomy's: scores of absent classes stay far below the rest
    place = np.zeros((len(fit.classes), n_classes), "float32")
    place[np.arange(len(fit.classes)), fit.classes] = 1.0
    absent = np.where(place.sum(axis=0) > 0, 0.0, -100.0).astype("float32")
    support = fit.support.astype("float32")
    pair_coef, intercept = fit.pair_coef.astype("float32"), fit.intercept.astype("float32")
    losses = (signs < 0).astype("float32")

    def product(t, matrix: np.ndarray):
        """t @ matrix for rows t (batch, n), as products and sums."""
        return ops.sum(t[:, :, None] * matrix[None].astype("float32"), axis=1)

    class RbfKernel(layers.Layer):
        """exp(-gamma |z - s|^2) for every support vector s."""

        def call(self, z):
            d = z[:, None, :] - support[None]
            return ops.exp(-fit.gamma * ops.sum(d * d, axis=-1))

    class OvrScores(layers.Layer):
        """Kernel values -> one-vs-one decisions -> per-class votes plus confidences in (-1/3, 1/3), as
        scikit-learn's SVC."""

        def call(self, k):
            d = product(k, pair_coef) + intercept
            v = ops.sigmoid(VOTE_STEEPNESS * d)
            votes = product(v, wins) + product(1.0 - v, losses)
            confidence = product(d, signs)
            scores = votes + confidence / (3.0 * (ops.abs(confidence) + 1.0))
            return product(scores, place) + absent

    inputs = features_model.input
    x = layers.Rescaling(
        fit.scale.astype("float32"), offset=(-fit.mean * fit.scale).astype("float32"), name="scale_features"
    )(features_model.output)
    pca = layers.Dense(fit.projection.shape[1], trainable=False, name="pca")
    z = pca(x)
    pca.set_weights([fit.projection.astype("float32"), fit.offset.astype("float32")])
    k = RbfKernel(name="rbf")(z)
    probs = layers.Softmax(name="probs")(OvrScores(name="ovr")(k))
    return keras.Model(inputs, probs, name=name)


def train_kernel_model(x: np.ndarray, y: np.ndarray, n_classes: int, input_name: str, seed: int):
    """The face kernel model fitted on crops x (N, S, S, 1) with labels y and on their mirror images; its
    PCA keeps as many components as the crops alone allow (a mirror image is no new face)."""
    import_tf(seed)
    features_model = build_feature_model(x.shape[1:], input_name)
    features = features_model.predict(  # float32: a large face set's rows are many
        np.concatenate([x, x[:, :, ::-1]]), batch_size=256, verbose=0
    )
    fit = fit_kernel(features, np.concatenate([y, y]), seed, pca_components(len(x), features.shape[1]))
    return build_kernel_model(features_model, fit, n_classes)
