"""Face images: the FER2013 csv (emotion, pixels, Usage) or folders laid out as <label>/<subject>_<name>.png.

Images of any size and colour go through the shared image preprocessing (48x48 grayscale). FER2013 has no
subject ids, so each image is its own subject there (a subject-independent split is then a random one, and
the report says which data it was).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmer_core.formats import read_fer2013
from mmer_core.preprocess import preprocess_batch
from mmer_core.taxonomy import QUADRANTS, map_label
from trainer.data import Dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_fer2013(path: Path) -> Dataset:
    """Rows of 48x48 space-separated grey pixels with the FER2013 emotion code."""
    images, labels = [], []
    for image, label in read_fer2013(path):
        images.append(image)
        labels.append(QUADRANTS.index(label))
    if not images:
        raise ValueError(f"faces:{path}: no rows")
    n = len(images)
    return Dataset(
        "image", preprocess_batch("image", images), np.array(labels), np.array([f"fer{i}" for i in range(n)]),
        np.zeros(n), f"faces:{path} (FER2013 csv, {n} images, no subject ids)",
    )  # fmt: skip


def load_image_folders(root: Path) -> Dataset:
    """<label>/<subject>_<name>.png|jpg; label is a taxonomy label or a common emotion word."""
    from matplotlib.image import imread

    root = Path(root)
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"faces:{root}: no images (.png/.jpg) below it")
    images, labels, subjects = [], [], []
    for p in paths:
        rel = p.relative_to(root)
        if len(rel.parts) < 2 or "_" not in p.stem:
            raise ValueError(f"faces:{p}: expected <label>/<subject>_<name>{p.suffix}")
        labels.append(QUADRANTS.index(map_label("generic", rel.parts[-2])))
        subjects.append(p.stem.split("_", 1)[0])
        img = np.asarray(imread(p), dtype=np.float32)
        if img.max() > 1.0:
            img = img / 255.0
        images.append(img[..., :3] if img.ndim == 3 else img)
    n = len(images)
    return Dataset(
        "image", preprocess_batch("image", images), np.array(labels), np.array(subjects), np.zeros(n),
        f"faces:{root} ({n} images, {len(set(subjects))} subjects)",
    )  # fmt: skip


def load_faces(path: Path) -> Dataset:
    """A FER2013 csv file, or a folder of labelled image folders."""
    path = Path(path)
    return load_fer2013(path) if path.is_file() else load_image_folders(path)
