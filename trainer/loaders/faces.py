"""Face images: the FER2013 csv (emotion, pixels, Usage), or a folder in a layout a face set ships in (JAFFE,
KDEF, RaFD, CK+; trainer.loaders.face_layouts), or image folders `<label>/<person>_<name>.png` (or jpg, bmp, tiff).

Who is in each picture decides the person-independent folds. JAFFE, KDEF and RaFD names and CK+ folders say it. In
image folders it is the part of the file name before the first underscore, unless the root holds a
`persons.csv` with columns `file,person` (file relative to the root, e.g. `happy/S005_001_00000011.png`),
which then names the person of every file it lists (a file it does not list is an error). FER2013 has no
person ids, so each image is its own person there (a person-independent split is then a random one, and the
description says so).

Every image goes through the shared image preprocessing, face detection and eye alignment included, exactly
as a camera frame on the edge does. Images in which no face is found are left out and counted in the
description; a set in which no face is found at all is an error.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mmer_core.file_tree import files_below
from mmer_core.formats import read_fer2013
from mmer_core.labelled_files import label_each, label_of
from mmer_core.preprocess import preprocess_kept
from mmer_core.taxonomy import QUADRANTS
from trainer.data import Dataset
from trainer.loaders.face_layouts import NAMED_LAYOUTS, FaceFile, ck_plus, is_ck_plus

# what face sets ship in (JAFFE: TIFF); OpenCV reads them all
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
PERSONS_FILE = "persons.csv"


def load_fer2013(path: Path) -> Dataset:
    """Rows of square space-separated grey pixels with the FER2013 emotion code."""
    images, labels = [], []
    for image, label in read_fer2013(path):
        images.append(image)
        labels.append(QUADRANTS.index(label))
    if not images:
        raise ValueError(f"faces:{path}: no rows")
    persons = np.array([f"fer{i}" for i in range(len(images))])
    return _dataset(images, np.array(labels), persons, f"faces:{path} (FER2013 csv, no person ids)")


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image of any depth or colour; ValueError naming the file if unreadable."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"faces:{path}: not a readable image")
    return img[..., ::-1]


def read_persons(root: Path) -> dict[str, str] | None:
    """file (relative to root, forward slashes) -> person id from root/persons.csv, or None without one."""
    path = root / PERSONS_FILE
    if not path.is_file():
        return None
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"file", "person"} <= set(reader.fieldnames):
            raise ValueError(f"faces:{path}: needs the columns file,person")
        return {row["file"].strip(): row["person"].strip() for row in reader}


def person_of(path: Path, root: Path, persons: dict[str, str] | None) -> str:
    """The person in one image: from persons.csv when there is one, else the file name before its first `_`."""
    rel = path.relative_to(root).as_posix()
    if persons is not None:
        if rel not in persons:
            raise ValueError(f"faces:{path}: not listed in {root / PERSONS_FILE}")
        return persons[rel]
    if "_" not in path.stem:
        raise ValueError(f"faces:{path}: expected <label>/<person>_<name>{path.suffix} or a {PERSONS_FILE}")
    return path.stem.split("_", 1)[0]


def label_folder_file(path: Path, root: Path, persons: dict[str, str] | None) -> FaceFile:
    """`<label>/<person>_<name>`: the folder an emotion word (or taxonomy label), the person as person_of says."""
    if len(path.relative_to(root).parts) < 2:
        raise ValueError(
            f"faces:{path}: expected <label>/<person>_<name>{path.suffix}, or a JAFFE, KDEF or RaFD name"
        )
    return FaceFile(path, label_of("generic", path.parent.name, path), person_of(path, root, persons))


def face_file(path: Path, root: Path, persons: dict[str, str] | None) -> FaceFile:
    """One image's label and person: from its JAFFE, KDEF or RaFD name, else from its label folder."""
    for layout in NAMED_LAYOUTS:
        found = layout(path)
        if found is not None:
            return found
    return label_folder_file(path, root, persons)


def load_image_folders(root: Path, skip_misnamed: bool = False) -> Dataset:
    """Every image below root, labelled by its JAFFE, KDEF or RaFD name or its label folder (see face_file).
    An image that gives no label stops the load with an error naming it; with skip_misnamed such images are
    left out instead, and one warning counts and names them all."""
    root = Path(root)
    paths = [p for p in files_below(root) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
        raise ValueError(f"faces:{root}: no images ({', '.join(IMAGE_SUFFIXES)}) below it")
    persons = read_persons(root)
    files = label_each(
        paths, lambda path: face_file(path, root, persons), root, "faces", "images", skip_misnamed
    )
    source = f"persons from {PERSONS_FILE}" if persons is not None else "persons from the file names"
    return _labelled(files, f"faces:{root} ({source})")


def load_ck_plus(root: Path) -> Dataset:
    """A CK+ folder: each labelled sequence's peak and first frames (trainer.loaders.face_layouts.ck_plus)."""
    return _labelled(ck_plus(root), f"faces:{root} (CK+: peak and first frame of each labelled sequence)")


def _labelled(files: list[FaceFile], description: str) -> Dataset:
    images = [read_image(f.path) for f in files]
    labels = np.array([QUADRANTS.index(f.label) for f in files])
    return _dataset(images, labels, np.array([f.person for f in files]), description)


def _dataset(images: list, labels: np.ndarray, persons: np.ndarray, description: str) -> Dataset:
    x, found = preprocess_kept("image", images)
    if not found.any():
        raise ValueError(f"{description}: no face found in any of its {len(images)} images")
    n = int(found.sum())
    return Dataset(
        "image",
        x,
        labels[found],
        persons[found],
        np.zeros(n),
        f"{description}: {n} images of {len(set(persons[found]))} persons, "
        f"{len(images) - n} without a detected face left out",
    )


def load_faces(path: Path, skip_misnamed: bool = False) -> Dataset:
    """A FER2013 csv file, a CK+ folder, or a folder of JAFFE, KDEF, RaFD or label-folder images
    (skip_misnamed: see load_image_folders)."""
    path = Path(path)
    if path.is_file():
        return load_fer2013(path)
    return load_ck_plus(path) if is_ck_plus(path) else load_image_folders(path, skip_misnamed)
