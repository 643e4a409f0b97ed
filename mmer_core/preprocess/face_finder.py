"""Where the face is in a camera frame, and the aligned crop of it the face model takes.

OpenCV's Haar cascades (shipped inside the opencv-python-headless wheel, nothing downloaded) find the
largest frontal face on a downscaled copy of the frame, then the two eyes inside the face at a fixed
working size. The crop is a similarity transform that puts the eye centres at fixed points of the output,
so roll, scale and position no longer differ between frames; when the eyes are not found the face box
alone places them where a Haar box puts them on average. A frame without a face raises NoFace: the edge
counts it and scores nothing, the trainer leaves the image out and says how many it left out.

Tight face crops (FER2013-style 48x48 images) are padded with their own edge pixels before detection, so a
face that fills the whole picture is still found.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mmer_core.modalities import SPECS

P = SPECS["image"].params
Point = tuple[float, float]


class NoFace(ValueError):
    """No face was found in the frame: nothing to score, not a malformed input."""


@dataclass(frozen=True)
class FoundFace:
    """A face in frame pixels: its box (x, y, w, h) and the eye centres (left in the image first), if found."""

    box: tuple[float, float, float, float]
    eyes: tuple[Point, Point] | None


@lru_cache(maxsize=1)
def opencv():
    """OpenCV, imported when a frame first needs it (an edge node without a camera never loads it)."""
    try:
        import cv2
    except ImportError:
        raise ImportError("image: face detection needs OpenCV: pip install 'mmer[face]'") from None
    cv2.setNumThreads(1)  # an edge node gives each modality one core at most
    return cv2


_per_thread = threading.local()


def _cascades():
    """OpenCV and the calling thread's own face and eye cascades: a CascadeClassifier keeps each search's
    scale data in itself, so two threads searching with one (agents of one process, each on its inference
    thread) corrupt each other's boxes or fail an OpenCV assertion."""
    loaded = getattr(_per_thread, "cascades", None)
    if loaded is None:
        cv2 = opencv()
        root = cv2.data.haarcascades
        face = cv2.CascadeClassifier(root + "haarcascade_frontalface_default.xml")
        eye = cv2.CascadeClassifier(root + "haarcascade_eye.xml")
        if face.empty() or eye.empty():
            raise ImportError(
                f"image: the Haar cascades in {root} did not load (opencv-python-headless<5 ships them)"
            )
        loaded = _per_thread.cascades = (cv2, face, eye)
    return loaded


def to_uint8(gray: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> 8-bit, what the cascades read."""
    return np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)


Box = tuple[float, float, float, float]


def _detect(
    gray: np.ndarray, scale: float, min_side: float, max_side: float, scale_factor: float
) -> list[Box]:
    """Haar face boxes of an 8-bit grey picture in its own pixels, searched on a copy resized by `scale`,
    equalised and padded with its edge pixels (so a face that fills the picture is found). Face sides are
    pixels of that copy: at least min_side, or P["detect_min_face_frac"] of its short side if more when
    max_side is 0 (a full-frame search), else at most max_side."""
    cv2, face_cascade, _ = _cascades()
    small = cv2.resize(
        gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    pad = round(P["detect_pad"] * min(small.shape))
    small = cv2.copyMakeBorder(cv2.equalizeHist(small), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    if max_side <= 0:
        min_side = max(min_side, round(P["detect_min_face_frac"] * min(small.shape)))
    boxes = face_cascade.detectMultiScale(
        small,
        scaleFactor=scale_factor,
        minNeighbors=int(P["detect_min_neighbors"]),
        minSize=(round(min_side), round(min_side)),
        maxSize=(round(max_side), round(max_side)),
    )
    rows = boxes.tolist() if len(boxes) else []
    return [((bx - pad) / scale, (by - pad) / scale, bw / scale, bh / scale) for bx, by, bw, bh in rows]


def find_face(gray: np.ndarray) -> FoundFace:
    """The largest frontal face of an 8-bit grey frame, with its eyes when they are found; NoFace otherwise."""
    h, w = gray.shape
    scale = P["detect_long_side_px"] / max(h, w)
    boxes = _detect(gray, scale, P["detect_min_face_px"], 0, P["detect_scale_factor"])
    if not boxes:
        raise NoFace(f"image: no face found in the {w}x{h} frame")
    box = max(boxes, key=lambda b: b[2] * b[3])
    return FoundFace(box, find_eyes(gray, box))


def find_face_near(gray: np.ndarray, last: Box) -> FoundFace:
    """The face nearest to where a camera stream's face last was (`last`, a box in frame pixels), looked for
    only in the region around it and at about its size: a fraction of a full-frame search's cost while the
    face moves a little between frames. NoFace when it is not there (it moved far, or left)."""
    h, w = gray.shape
    x, y, bw, bh = last
    margin = P["track_margin"] * max(bw, bh)
    r0, r1 = max(0, round(y - margin)), min(h, round(y + bh + margin))
    c0, c1 = max(0, round(x - margin)), min(w, round(x + bw + margin))
    side = P["track_face_px"]
    scale = side / max(bw, 1.0)
    if r1 - r0 < 2 or c1 - c0 < 2 or min(r1 - r0, c1 - c0) * scale < P["track_min_scale"] * side:
        raise NoFace(f"image: the last face {last} lies outside the {w}x{h} frame")
    boxes = _detect(
        gray[r0:r1, c0:c1],
        scale,
        P["track_min_scale"] * side,
        P["track_max_scale"] * side,
        P["track_scale_factor"],
    )
    if not boxes:
        raise NoFace(f"image: no face near {tuple(round(v) for v in last)} in the {w}x{h} frame")
    cx, cy = x + bw / 2 - c0, y + bh / 2 - r0
    bx, by, fw, fh = min(boxes, key=lambda b: (b[0] + b[2] / 2 - cx) ** 2 + (b[1] + b[3] / 2 - cy) ** 2)
    box = (bx + c0, by + r0, fw, fh)
    return FoundFace(box, find_eyes(gray, box))


def find_eyes(gray: np.ndarray, box: Box) -> tuple[Point, Point] | None:
    """The two eye centres inside a face box, or None unless exactly one plausible eye lies in each half.

    The upper band of the face is resampled to a fixed width, so the cost does not grow with the camera's
    resolution."""
    cv2, _, eye_cascade = _cascades()
    x, y, w, h = box
    side = int(P["eye_roi_px"])
    top, bottom = y + P["eye_band_top"] * h, y + P["eye_band_bottom"] * h
    r0, r1 = max(0, round(top)), min(gray.shape[0], round(bottom))
    c0, c1 = max(0, round(x)), min(gray.shape[1], round(x + w))
    if r1 - r0 < 2 or c1 - c0 < 2:
        return None
    s = side / w
    band = cv2.resize(
        gray[r0:r1, c0:c1],
        (max(1, round((c1 - c0) * s)), max(1, round((r1 - r0) * s))),
        interpolation=cv2.INTER_AREA,
    )
    found = eye_cascade.detectMultiScale(
        band,
        scaleFactor=P["eye_scale_factor"],
        minNeighbors=int(P["eye_min_neighbors"]),
        minSize=(int(P["eye_min_px"]), int(P["eye_min_px"])),
    )
    centres = [(ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in (found.tolist() if len(found) else [])]
    middle = (x + w / 2 - c0) * s
    left = [c for c in centres if c[0] < middle]
    right = [c for c in centres if c[0] >= middle]
    if len(left) != 1 or len(right) != 1:
        return None
    (lx, ly), (rx, ry) = left[0], right[0]
    if (rx - lx) < P["eye_min_gap"] * side or abs(ry - ly) > P["eye_max_tilt"] * (rx - lx):
        return None
    back = lambda px, py: (c0 + px / s, r0 + py / s)  # noqa: E731
    return back(lx, ly), back(rx, ry)


def eye_points(face: FoundFace) -> tuple[Point, Point]:
    """The face's eye centres, or where a Haar face box puts them on average when they were not found."""
    if face.eyes is not None:
        return face.eyes
    x, y, w, h = face.box
    ey = y + P["box_eye_y"] * h
    return (x + P["box_eye_left_x"] * w, ey), (x + P["box_eye_right_x"] * w, ey)


def alignment(eyes: tuple[Point, Point], size: int) -> np.ndarray:
    """The 2x3 similarity transform (rotation, scale, shift) taking the eye centres to the output's eye points."""
    (lx, ly), (rx, ry) = eyes
    target_l = np.array([P["aligned_eye_left_x"] * size, P["aligned_eye_y"] * size])
    target_r = np.array([P["aligned_eye_right_x"] * size, P["aligned_eye_y"] * size])
    src = complex(rx - lx, ry - ly)
    dst = complex(*(target_r - target_l))
    z = dst / src  # rotation and scale as one complex number
    a, b = z.real, z.imag
    tx = target_l[0] - (a * lx - b * ly)
    ty = target_l[1] - (b * lx + a * ly)
    return np.array([[a, -b, tx], [b, a, ty]])


def aligned_crop(gray: np.ndarray, face: FoundFace, size: int) -> np.ndarray:
    """(size, size) float crop in [0, 1] of a grey frame (8-bit, or floats in [0, 1]) with the eyes at fixed
    points; area-averaged when it shrinks. Only the part of the frame that the crop shows is converted and
    resampled, so the cost does not grow with the camera's resolution."""
    cv2 = opencv()
    m = alignment(eye_points(face), size)
    shrink = float(np.hypot(m[0, 0], m[1, 0]))
    f = 2.0 * shrink if shrink < 0.5 else 1.0  # pre-shrink so the bilinear warp does not alias
    corners = cv2.invertAffineTransform(m) @ np.array([[0, size, 0, size], [0, 0, size, size], [1, 1, 1, 1]])
    margin = 2.0 / f + 1.0
    h, w = gray.shape
    x0 = int(np.clip(np.floor(corners[0].min() - margin), 0, w - 1))
    y0 = int(np.clip(np.floor(corners[1].min() - margin), 0, h - 1))
    x1 = int(np.clip(np.ceil(corners[0].max() + margin), x0 + 1, w))
    y1 = int(np.clip(np.ceil(corners[1].max() + margin), y0 + 1, h))
    src = gray[y0:y1, x0:x1].astype(np.float32)
    if gray.dtype == np.uint8:
        src *= np.float32(1.0 / 255.0)
    m = np.column_stack([m[:, :2], m[:, 2] + m[:, :2] @ (x0, y0)])  # in the region's pixels
    if f < 1.0:
        src = cv2.resize(src, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        m = m @ np.diag([1.0 / f, 1.0 / f, 1.0])
    return cv2.warpAffine(
        src, m.astype(np.float32), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
