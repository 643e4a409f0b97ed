"""Sensor recording folders: written from a synthetic session, replayed to the same windows the live source
gives, and malformed ones refused naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.recording import write_recording
from edge_node.sources import open_source
from mmer_core.modalities import MODALITIES
from testkit.recordings import render_synthetic_recording

SECONDS = 70.0  # one hr window (60 s) and a few utterances


def render(folder, seed: int = 3, seconds: float = SECONDS):
    return render_synthetic_recording(folder, seed, seconds)


def same_data(a, b) -> bool:
    if a.modality == "hr":
        return all(np.array_equal(getattr(a.data, c), getattr(b.data, c)) for c in ("beats", "eda", "temp"))
    return np.array_equal(a.data, b.data)


def test_a_rendered_session_replays_to_the_windows_of_the_live_synthetic_source(tmp_path):
    folder = render(tmp_path / "rec")
    live = list(open_source("synthetic:3", MODALITIES, "s1", fast=True, seconds=SECONDS))
    replayed = list(open_source(f"replay:{folder}", MODALITIES, "s1", fast=True, seconds=SECONDS))
    assert {w.modality for w in replayed} == set(MODALITIES)
    # a recording ends: the utterance still in progress is scored, a live source's is not yet over
    assert len(live) > 400 and len(replayed) in (len(live), len(live) + 1)
    assert replayed[len(live) :] == [] or replayed[-1].modality == "speech"
    for a, b in zip(live, replayed[: len(live)], strict=True):
        assert (a.modality, a.label) == (b.modality, b.label)
        assert a.t_start == pytest.approx(b.t_start, abs=1e-6) and a.t_end == pytest.approx(b.t_end, abs=1e-6)
        assert same_data(a, b), f"{a.modality} window ending at {a.t_end} differs"


def test_a_recording_replays_only_the_modalities_asked_for_and_is_paced(tmp_path):
    folder = render(tmp_path / "rec", seconds=3.0)
    windows = list(open_source(f"replay:{folder}", ["eeg"], "s1", fast=True, seconds=None))
    assert [w.t_end for w in windows] == pytest.approx([2.0, 2.5, 3.0])
    import time

    started = time.monotonic()
    list(open_source(f"replay:{folder}", ["eeg"], "s1", fast=False, seconds=2.5))
    assert 2.3 < time.monotonic() - started < 4.0, "the last window is handed out when its end time has come"


def test_a_recording_without_labels_gives_unlabelled_windows(tmp_path):
    write_recording(tmp_path / "rec", speech=np.zeros(16000, np.float32), eeg=np.zeros((512, 14)))
    windows = list(open_source(f"replay:{tmp_path / 'rec'}", ["eeg"], "s1", fast=True, seconds=None))
    assert len(windows) == 5 and all(w.label is None for w in windows)


def test_a_truncated_stream_replays_what_it_holds(tmp_path):
    folder = write_recording(tmp_path / "rec", eeg=np.zeros((128 * 4, 14)))
    raw = (folder / "eeg.npy").read_bytes()
    (folder / "eeg.npy").write_bytes(raw[: len(raw) - 128 * 14 * 8])  # the last second never made it to disk
    windows = list(open_source(f"replay:{folder}", ["eeg"], "s1", fast=True, seconds=None))
    assert [w.t_end for w in windows] == pytest.approx([2.0, 2.5, 3.0])


def save(folder, name, array):
    folder.mkdir(exist_ok=True)
    np.save(folder / name, array)


@pytest.mark.parametrize(
    ("make", "modalities", "message"),
    [
        (lambda d: save(d, "eeg.npy", np.zeros((256, 14))), ["eeg", "speech"], "no stream for speech"),
        (lambda d: save(d, "eeg.npy", np.zeros((256, 8))), ["eeg"], r"eeg.npy: expected \(n, 14\)"),
        (lambda d: save(d, "eeg.npy", np.zeros((256, 14), order="F").T), ["eeg"], "expected"),
        (lambda d: save(d, "eeg.npy", np.asfortranarray(np.zeros((256, 14)))), ["eeg"], "C-ordered"),
        (lambda d: save(d, "speech.npy", np.zeros((100, 2))), ["speech"], r"speech.npy: expected \(n,\)"),
        (lambda d: save(d, "image.npy", np.zeros((5, 48, 48))), ["image"], "uint8"),
        (lambda d: (d.mkdir(), (d / "eeg.npy").write_bytes(b"not an array")), ["eeg"], "not a .npy array"),
        (
            lambda d: save(d, "hr_beats.npy", np.array([[2.0, 0.8], [1.0, 0.8]])),
            ["hr"],
            "beats times must be in ascending order",
        ),
        (lambda d: save(d, "hr_beats.npy", np.zeros((5, 3))), ["hr"], r"hr: beats must be \(n, 2\)"),
        (
            lambda d: (
                save(d, "eeg.npy", np.zeros((256, 14))),
                save(d, "labels.npy", np.array(["calm"])),
                save(d, "label_times.npy", np.array([0.0, 1.0])),
            ),
            ["eeg"],
            "differ in length",
        ),
        (
            lambda d: (save(d, "eeg.npy", np.zeros((256, 14))), save(d, "labels.npy", np.array(["calm"]))),
            ["eeg"],
            "labels need both",
        ),
        (
            lambda d: (
                save(d, "eeg.npy", np.zeros((256, 14))),
                save(d, "labels.npy", np.array(["calm", "sad"])),
                save(d, "label_times.npy", np.array([1.0, 0.0])),
            ),
            ["eeg"],
            "label_times.npy must be in ascending order",
        ),
    ],
)
def test_malformed_recordings_are_refused_naming_the_file(tmp_path, make, modalities, message):
    make(tmp_path / "rec")
    with pytest.raises(ValueError, match=message):
        list(open_source(f"replay:{tmp_path / 'rec'}", modalities, "s1", fast=True, seconds=None))


@pytest.mark.parametrize(
    ("streams", "message"),
    [
        ({"eeg": np.zeros((14, 256))}, r"eeg: expected \(n, 14\)"),
        ({"eeg": np.zeros((256, 14), np.int16)}, r"eeg: expected \(n, 14\)"),
        ({"speech": np.zeros((2, 16000))}, "speech: expected"),
        ({"image": np.zeros((3, 48, 48), np.float32)}, "uint8"),
        ({"labels": (np.array([1.0, 0.0]), np.array(["calm", "sad"]))}, "times ascending"),
    ],
)
def test_write_recording_refuses_malformed_streams(tmp_path, streams, message):
    with pytest.raises(ValueError, match=message):
        write_recording(tmp_path / "rec", **streams)
