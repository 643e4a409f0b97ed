"""Face detection, eye alignment and the no-face outcome on real camera frames and on drawn faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmer_core.modalities import SPECS
from mmer_core.preprocess import face_finder, preprocess, preprocess_kept
from mmer_core.preprocess.face_finder import FoundFace, NoFace
from mmer_core.preprocess.face_tracker import FaceTracker
from mmer_core.preprocess.image import to_gray
from testkit.face_folders import face_frame
from trainer.augment import augment_faces

cv2 = pytest.importorskip("cv2", reason="face detection needs opencv-python-headless (the 'face' extra)")

FRAMES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess-frames"
P = SPECS["image"].params


def real_frames() -> list[np.ndarray]:
    """The shared real camera frames as RGB arrays; the test using them skips, saying so, without them."""
    paths = sorted(FRAMES.glob("*.png"))
    if not paths:
        pytest.skip(f"{FRAMES} is absent: no real camera frames to detect faces in")
    return [cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1] for p in paths]


def grey8(rgb: np.ndarray) -> np.ndarray:
    return to_gray(rgb, eight_bit=True)


def iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_one_face_with_eyes_in_every_real_frame() -> None:
    frames = real_frames()
    with_eyes = 0
    for rgb in frames:
        face = face_finder.find_face(grey8(rgb))
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and x + w <= rgb.shape[1] and y + h <= rgb.shape[0]
        assert 0.35 * rgb.shape[0] < h < 0.9 * rgb.shape[0], "a frontal face of a head-and-shoulders frame"
        assert x < rgb.shape[1] / 2 < x + w, "the face is the one in the middle of the frame"
        if face.eyes is not None:
            (lx, ly), (rx, ry) = face.eyes
            assert x < lx < x + w / 2 < rx < x + w and y < ly < y + h / 2 and y < ry < y + h / 2
            with_eyes += 1
        out = preprocess("image", rgb)
        assert out.shape == (48, 48, 1) and out.min() >= 0.0 and out.max() <= 1.0
    assert with_eyes >= 0.75 * len(frames), f"eyes found in only {with_eyes} of {len(frames)} frames"


def test_a_real_face_somewhere_in_a_larger_picture_is_found_there() -> None:
    rgb = real_frames()[0]
    g = grey8(rgb)
    own = face_finder.find_face(g).box
    canvas = np.full((480, 640), 90, np.uint8)
    canvas += np.random.default_rng(0).integers(0, 30, canvas.shape, dtype=np.uint8)
    top, left = 240, 230  # a VGA frame with the head and shoulders in its lower right part
    canvas[top : top + g.shape[0], left : left + g.shape[1]] = g
    expected = (left + own[0], top + own[1], own[2], own[3])
    assert iou(face_finder.find_face(canvas).box, expected) > 0.6


def test_a_drawn_face_somewhere_in_a_larger_picture_is_found_there() -> None:
    rng = np.random.default_rng(2)
    from mmer_core.synthetic import face
    from mmer_core.synthetic.traits import sample_traits

    picture = face.draw(sample_traits(rng), np.array([0.6]), np.array([-0.4]), rng, 0.0)[0]
    canvas = np.full((240, 320), 160, np.uint8)
    canvas[120:216, 30:126] = picture
    x, y, w, h = face_finder.find_face(canvas).box
    assert 30 - 10 < x + w / 2 - 48 < 30 + 10 and 120 - 10 < y + h / 2 - 48 < 120 + 10


def test_alignment_puts_the_eyes_at_their_fixed_points_whatever_the_roll() -> None:
    size = 48
    targets = np.array(
        [[P["aligned_eye_left_x"], P["aligned_eye_y"]], [P["aligned_eye_right_x"], P["aligned_eye_y"]]]
    )
    targets *= size
    for angle_deg, gap, centre in (
        (0.0, 60.0, (200, 150)),
        (20.0, 40.0, (120, 90)),
        (-15.0, 90.0, (300, 200)),
    ):
        a = np.deg2rad(angle_deg)
        half = 0.5 * gap * np.array([np.cos(a), np.sin(a)])
        left, right = np.array(centre) - half, np.array(centre) + half
        m = face_finder.alignment((tuple(left), tuple(right)), size)
        mapped = np.array([m @ [*left, 1.0], m @ [*right, 1.0]])
        assert np.allclose(mapped, targets, atol=1e-9)
        # the same on pixels: two dark dots land where the eyes belong in the crop
        frame = np.ones((400, 500), np.float32)
        for px, py in (left, right):
            cv2.circle(frame, (round(px), round(py)), max(2, round(gap / 12)), 0.0, -1)
        crop = face_finder.aligned_crop(frame, FoundFace((0, 0, 1, 1), (tuple(left), tuple(right))), size)
        for tx, ty in targets:
            patch = crop[round(ty) - 1 : round(ty) + 2, round(tx) - 1 : round(tx) + 2]
            assert patch.mean() < 0.5, f"no dark eye at ({tx:.1f}, {ty:.1f}) after a {angle_deg} degree roll"


def test_without_eyes_the_face_box_places_them() -> None:
    face = FoundFace((100.0, 50.0, 200.0, 200.0), None)
    (lx, ly), (rx, ry) = face_finder.eye_points(face)
    assert (lx, ly) == (100 + P["box_eye_left_x"] * 200, 50 + P["box_eye_y"] * 200)
    assert (rx, ry) == (100 + P["box_eye_right_x"] * 200, ly)


def test_a_tight_face_crop_is_found_too() -> None:
    """FER2013-style pictures are all face: the detector's padding still finds it."""
    rgb = real_frames()[1]
    x, y, w, h = (int(v) for v in face_finder.find_face(grey8(rgb)).box)
    tight = cv2.resize(rgb[y : y + h, x : x + w], (48, 48), interpolation=cv2.INTER_AREA)
    assert preprocess("image", tight).shape == (48, 48, 1)


def test_no_face_is_a_counted_outcome_not_a_garbage_crop() -> None:
    blank = np.full((120, 160), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (120, 160), dtype=np.uint8)
    for frame in (blank, noise):
        with pytest.raises(NoFace, match="no face found in the 160x120 frame"):
            preprocess("image", frame)
    x, kept = preprocess_kept("image", [blank, face_frame(1), noise, face_frame(2)])
    assert kept.tolist() == [False, True, False, True] and x.shape == (2, 48, 48, 1)
    assert issubclass(NoFace, ValueError), "callers that refuse bad windows refuse it too"


def test_augmentation_keeps_crops_in_range_and_varies_them() -> None:
    x = np.stack([preprocess("image", face_frame(s)) for s in range(4)])
    rng = np.random.default_rng(0)
    a, b = augment_faces(x, rng), augment_faces(x, rng)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert not np.allclose(a, b) and not np.allclose(a, x)
    assert np.corrcoef(a[0].ravel(), x[0].ravel())[0, 1] > 0.3, "still the same face"


def on_canvas(grey: np.ndarray, top: int, left: int) -> np.ndarray:
    """The frame pasted into a larger, plain camera picture at (top, left)."""
    canvas = np.full((grey.shape[0] + 80, grey.shape[1] + 120), 90, np.uint8)
    canvas[top : top + grey.shape[0], left : left + grey.shape[1]] = grey
    return canvas


def test_a_face_that_moves_a_little_is_found_by_the_region_search() -> None:
    for rgb in real_frames():
        g = grey8(rgb)
        tracker = FaceTracker()
        for k in range(8):  # the head drifts by a few pixels a frame
            frame = on_canvas(g, 20 + 2 * k, 30 + 5 * k)
            assert iou(tracker.find(frame).box, face_finder.find_face(frame).box) > 0.6
        assert (tracker.counts.full, tracker.counts.near, tracker.counts.lost) == (1, 7, 0)


def test_a_face_that_jumps_is_found_again_by_a_full_search() -> None:
    g = grey8(real_frames()[0])
    tracker = FaceTracker()
    tracker.find(on_canvas(g, 0, 0))
    jumped = on_canvas(g, 80, 120)  # across the picture between two frames
    assert iou(tracker.find(jumped).box, face_finder.find_face(jumped).box) > 0.99
    assert (tracker.counts.full, tracker.counts.near) == (2, 0)
    tracker.find(on_canvas(g, 78, 116))
    assert tracker.counts.near == 1, "and followed from there"


def test_frames_without_a_face_are_no_face_and_the_face_is_found_when_it_is_back() -> None:
    tracker = FaceTracker(keep=2)
    drawn = face_frame(1)
    tracker.find(drawn)
    blank = np.full_like(drawn, 128)
    for missing in range(1, 5):
        with pytest.raises(NoFace):
            tracker.find(blank)
        assert (tracker.last is None) == (missing > 2), "the last place is kept for `keep` frames"
    assert tracker.counts.lost == 4
    face = tracker.find(drawn)
    assert face.box == face_finder.find_face(drawn).box
    with pytest.raises(ValueError, match="full_every"):
        FaceTracker(full_every=0)


def test_a_synthetic_camera_stream_is_followed_with_few_full_searches_and_the_same_boxes() -> None:
    from mmer_core.synthetic import Session, SessionConfig

    _, frames = Session(SessionConfig("cam", 3, 30.0)).frames(0.0, 30.0)
    tracker = FaceTracker()
    overlap = []
    for frame in frames:
        try:
            tracked = tracker.find(frame)
            whole = face_finder.find_face(frame)
        except NoFace:
            continue
        overlap.append(iou(tracked.box, whole.box))
    counts = tracker.counts
    assert counts.near >= 0.7 * len(frames), counts
    assert counts.full <= counts.lost + 0.1 * len(frames), (
        "whole frames searched for hidden faces, jumps, checks"
    )
    assert len(overlap) > 0.7 * len(frames)
    assert np.median(overlap) > 0.8, "the face a whole-frame search finds, within the detector's own jitter"


def test_threads_that_detect_at_once_find_what_one_thread_finds() -> None:
    """Several edge agents in one process each detect on their own inference thread; a Haar classifier keeps
    per-call state in itself, so threads sharing one corrupted each other's (an OpenCV assertion on scaleIdx)."""
    from concurrent.futures import ThreadPoolExecutor

    frames = [grey8(rgb) for rgb in real_frames()]
    alone = [face_finder.find_face(g).box for g in frames]

    def boxes(_: int) -> list[tuple]:
        return [face_finder.find_face(g).box for g in frames]

    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(boxes, range(8)))
    assert all(found == alone for found in together)
