"""Synthetic multimodal data: deterministic, ordered, and informative but imperfect per modality."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmer_core.modalities import MODALITIES, SPECS
from mmer_core.preprocess import preprocess, preprocess_batch
from mmer_core.preprocess.image import preprocess_found
from mmer_core.synthetic import NoiseConfig, Session, SessionConfig, make_windows, stream_windows
from mmer_core.taxonomy import QUADRANTS

SEGMENTS = (("happy", 20.0), ("sad", 20.0), ("angry", 20.0), ("calm", 20.0))


@pytest.mark.parametrize("modality", MODALITIES)
def test_same_seed_same_data_other_seed_other_data(modality: str) -> None:
    seconds = 30 + SPECS[modality].window_s
    a = make_windows(modality, 2, seconds, seed=5, stride=3)
    b = make_windows(modality, 2, seconds, seed=5, stride=3)
    c = make_windows(modality, 2, seconds, seed=6, stride=3)
    assert len(a) == len(b) > 0
    # wrist windows hold several channels: compared by their features; the others sample for sample
    raw = (lambda w: preprocess(modality, w)) if modality == "hr" else np.asarray
    same = lambda x, y: np.array_equal(raw(x), raw(y))  # noqa: E731
    assert all(same(x, y) for x, y in zip(a.windows, b.windows, strict=True))
    assert np.array_equal(a.labels, b.labels)
    assert not all(same(x, y) for x, y in zip(a.windows, c.windows, strict=False))


def test_chunked_and_whole_reads_are_identical() -> None:
    session = Session(SessionConfig("s", 3, 40.0))
    whole = session.samples("speech", 5.0, 25.0)
    pieces = np.concatenate([session.samples("speech", t, t + 0.1) for t in np.arange(5.0, 25.0 - 1e-9, 0.1)])
    assert np.array_equal(whole, pieces)
    assert np.array_equal(session.samples("eeg", 7.9, 8.3), session.samples("eeg", 0, 16)[:, 1011:1062])


def test_labels_follow_the_segments_with_transitions() -> None:
    session = Session(SessionConfig("s", 1, 80.0, segments=SEGMENTS, transition_s=4.0))
    assert [session.label_at(t) for t in (5, 25, 45, 65)] == ["happy", "sad", "angry", "calm"]
    v, a = session.valence_arousal(5.0)
    assert v > 0.4 and a > 0.4
    v, a = session.valence_arousal(30.0)
    assert v < -0.4 and a < -0.4
    v_mid, _ = session.valence_arousal(20.0)
    assert abs(v_mid) < 0.3, "halfway through the happy->sad transition"


def test_streaming_windows_are_in_order_with_monotonic_times() -> None:
    session = Session(SessionConfig("s", 2, 25.0, segments=(("angry", 12.5), ("calm", 12.5))))
    windows = list(stream_windows(session))
    ends = [w.t_end for w in windows if w.modality != "speech"]
    assert ends == sorted(ends), (
        "windows come as they complete (an utterance only once the pause after it has)"
    )
    assert not [w for w in windows if w.modality == "hr"], "25 s hold no 60 s wrist window"
    for m in ("eeg", "speech", "image"):
        mine = [w for w in windows if w.modality == m]
        spec = SPECS[m]
        starts = np.array([w.t_start for w in mine])
        assert np.all(np.diff(starts) > 0), m
        assert mine[-1].t_end <= 25.0 + 1e-9
        if m == "speech":  # utterances: as long as the voice lasts, never overlapping, at most window_s
            assert all(a.t_end <= b.t_start for a, b in itertools.pairwise(mine)), m
            assert all(0.6 <= w.t_end - w.t_start <= spec.window_s for w in mine), m
            continue
        assert np.allclose(np.diff(starts), spec.hop_s), m
        assert all(w.t_end - w.t_start == pytest.approx(spec.window_s) for w in mine), m
    assert {w.label for w in windows} == {"angry", "calm"}
    assert windows[-1].label == "calm"
    speech = [w for w in windows if w.modality == "speech"]
    assert len(speech) >= 3 and all(w.data.shape == (round((w.t_end - w.t_start) * 16000),) for w in speech)


def test_streaming_in_real_time_is_paced() -> None:
    import time

    session = Session(SessionConfig("s", 2, 2.0))
    started = time.monotonic()
    windows = list(stream_windows(session, ("image",), realtime=True, speed=4.0))
    assert len(windows) == 10
    assert time.monotonic() - started >= 2.0 / 4.0 * 0.9


def _features(modality: str, windows: list[np.ndarray]) -> np.ndarray:
    x = preprocess_batch(modality, windows)
    return x.reshape(len(x), -1)


@pytest.mark.slow
@pytest.mark.parametrize("modality", MODALITIES)
def test_each_modality_alone_separates_the_classes_but_imperfectly(modality: str) -> None:
    # (seconds per subject, stride): enough windows for each modality's classes, no more
    seconds, stride = {"hr": (240, 2), "eeg": (240, 2), "speech": (120, 1), "image": (120, 10)}[modality]
    data = make_windows(modality, 10, seconds, seed=1, stride=stride)
    if modality == "image":  # a synthetic camera frame sometimes shows no face, which the trainer leaves out
        crops, found = preprocess_found(data.windows)
        assert found.mean() > 0.8, f"faces found in {found.mean():.0%} of the synthetic frames"
        x, labels, subjects = crops.reshape(len(crops), -1), data.labels[found], data.subjects[found]
    else:
        x, labels, subjects = _features(modality, data.windows), data.labels, data.subjects
    held_out = np.isin(subjects, np.unique(subjects)[:3])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(x[~held_out], labels[~held_out])
    accuracy = clf.score(x[held_out], labels[held_out])
    assert 0.40 < accuracy < 0.95, f"{modality}: held-out-subject accuracy {accuracy:.3f}"
    assert set(np.unique(data.labels)) == set(range(len(QUADRANTS)))


def test_noise_is_configurable_and_validated() -> None:
    quiet = make_windows("image", 1, 10, seed=4, noise=NoiseConfig(image=0.0))
    loud = make_windows("image", 1, 10, seed=4, noise=NoiseConfig(image=3.0))
    # pixel noise shows as differences between neighbouring pixels within a frame
    diff_quiet = np.abs(np.diff(np.stack(quiet.windows).astype(float), axis=2)).mean()
    diff_loud = np.abs(np.diff(np.stack(loud.windows).astype(float), axis=2)).mean()
    assert diff_loud > 2 * diff_quiet
    with pytest.raises(ValueError, match=r"noise\.eeg"):
        NoiseConfig(eeg=-1.0)


def test_bad_session_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown segment label 'bored'"):
        Session(SessionConfig("s", 1, 10.0, segments=(("bored", 10.0),)))
    with pytest.raises(ValueError, match="unknown modality"):
        list(Session(SessionConfig("s", 1, 10.0)).chunks(("gsr",)))
    with pytest.raises(ValueError, match="need n_subjects"):
        make_windows("hr", 0, 30, seed=1)


def test_a_face_shows_part_of_what_is_felt_and_the_head_moves_as_a_seated_persons_does() -> None:
    from mmer_core.synthetic import face

    t = np.arange(0.0, 300.0, 0.2)
    sessions = [Session(SessionConfig(f"s{i}", 50 + i, 300.0)) for i in range(10)]
    shown = np.stack([face.shown(s.demeanour, t) for s in sessions])
    assert shown.min() >= 0.0 and shown.max() <= 1.0
    assert 0.05 < np.mean(shown < 0.25) < 0.3, "a face at rest between expressions, some of the time"
    assert np.mean(shown > 0.75) > 0.5
    for s in sessions:
        where = face.corners(s.demeanour, t)
        assert (
            where.min() >= 0 and (where <= [face.FRAME_H - face.FACE_PX, face.FRAME_W - face.FACE_PX]).all()
        )
        steps = np.abs(np.diff(where, axis=0)).max(axis=1)
        assert np.median(steps) <= 2, "the head sways a pixel or two a frame"
        assert 0 < np.count_nonzero(steps > 10) <= 300 / face.SEAT_S, "and now and then moves to a new seat"
