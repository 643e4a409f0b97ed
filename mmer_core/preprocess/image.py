"""Faces: grayscale, find the face and its eyes, eye-aligned 48x48 crop in [0, 1] (see face_finder)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.preprocess import face_finder
from mmer_core.preprocess._checks import as_finite_array

SPEC = SPECS["image"]
SIZE = int(SPEC.params["size"])
LUMA = np.array([SPEC.params["luma_r"], SPEC.params["luma_g"], SPEC.params["luma_b"]])  # ITU-R BT.601
MIN_SIDE = int(SPEC.params["min_side_px"])

Locate = Callable[[np.ndarray], face_finder.FoundFace]


def to_gray(img: np.ndarray, eight_bit: bool) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3|4) -> (H, W) grey. 8-bit stays 8-bit (OpenCV's conversion, the same
    BT.601 weights, without a float copy of a camera's frame); floats in [0, 1] (or 0..255 when above 1)
    become floats in [0, 1]."""
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels not in (1, 3, 4):
        raise ValueError(f"image: expected 1, 3 or 4 colour channels, got {channels}")
    if eight_bit:
        if channels == 1:
            return img.reshape(img.shape[:2])
        cv2 = face_finder.opencv()
        code = cv2.COLOR_RGB2GRAY if channels == 3 else cv2.COLOR_RGBA2GRAY
        return cv2.cvtColor(np.ascontiguousarray(img, dtype=np.uint8), code)
    x = img.astype(np.float64)
    if x.max() > 1.0:
        x = x / 255.0
    if channels == 1:
        return x.reshape(x.shape[:2])
    return x[..., :3] @ LUMA


def check_box(img: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """A face box (x, y, w, h) given by the camera, checked to lie inside the frame."""
    h, w = img.shape[:2]
    x0, y0, bw, bh = (int(v) for v in box)
    if bw <= 0 or bh <= 0 or x0 < 0 or y0 < 0 or x0 + bw > w or y0 + bh > h:
        raise ValueError(f"image: face box {box} lies outside the {w}x{h} frame")
    return float(x0), float(y0), float(bw), float(bh)


def preprocess(
    raw: object, box: tuple[int, int, int, int] | None = None, locate: Locate = face_finder.find_face
) -> np.ndarray:
    """One frame (any size, gray or RGB) -> (48, 48, 1) float32 in [0, 1], the face found and eye-aligned.

    A camera that gives its own face box skips detection; `locate` finds the face in the 8-bit grey frame
    otherwise (a camera stream's FaceTracker.find on a device). NoFace (a ValueError) when there is none."""
    arr = np.asarray(raw)
    eight_bit = arr.dtype == np.uint8
    img = as_finite_array("image", arr, (2, 3), np.uint8 if eight_bit else np.float64)
    if min(img.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"image: too small: {img.shape[1]}x{img.shape[0]}, need at least {MIN_SIDE}x{MIN_SIDE} pixels"
        )
    gray = to_gray(img, eight_bit)
    gray8 = gray if eight_bit else face_finder.to_uint8(gray)
    if box is None:
        face = locate(gray8)
    else:
        checked = check_box(gray, box)
        face = face_finder.FoundFace(checked, face_finder.find_eyes(gray8, checked))
    out = face_finder.aligned_crop(gray, face, SIZE)
    return np.clip(out, 0.0, 1.0).astype(np.float32)[..., None]


def preprocess_batch(raws: list[object]) -> np.ndarray:
    """Frames may differ in size, so each is found and cropped on its own; NoFace if any has no face."""
    if len(raws) == 0:
        return np.empty((0, *SPEC.input_shape), np.float32)
    return np.stack([preprocess(r) for r in raws])


def preprocess_found(raws: list[object]) -> tuple[np.ndarray, np.ndarray]:
    """The crops of the frames with a face, and the boolean mask of which frames those were."""
    crops, found = [], np.zeros(len(raws), bool)
    for i, raw in enumerate(raws):
        try:
            crops.append(preprocess(raw))
        except face_finder.NoFace:
            continue
        found[i] = True
    x = np.stack(crops) if crops else np.empty((0, *SPEC.input_shape), np.float32)
    return x, found
