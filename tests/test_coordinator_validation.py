"""Batch validation refuses exactly what frame-by-frame validation refuses, naming the first bad frame."""

from __future__ import annotations

import time

import pytest

from coordinator.validation import InvalidFrame, validate_batch, validate_frame
from mmer.v1 import ingest_pb2
from mmer_core.taxonomy import QUADRANTS
from testkit.coordinator_helpers import frame

LABELS = {m: QUADRANTS.labels for m in ("hr", "eeg", "speech", "image")}
TOLERANCE_NS = 2_000_000_000
FUTURE_NS = 2**62

MUTATIONS = {
    "valid": {},
    "largest seq": dict(seq=2**64 - 1),
    "seq zero": dict(seq=0),
    "unknown modality": dict(modality="gsr"),
    "empty device": dict(device_id=""),
    "bad subject": dict(subject_id="a b"),
    "label order": dict(labels=["angry", "happy", "sad", "calm"]),
    "short probs": dict(probs=[0.5, 0.5]),
    "no probs": dict(probs=[]),
    "nan": dict(probs=[float("nan"), 0.5, 0.25, 0.25]),
    "infinite": dict(probs=[float("inf"), 0.0, 0.0, 0.0]),
    "negative": dict(probs=[-0.1, 0.6, 0.25, 0.25]),
    "sum": dict(probs=[0.5, 0.5, 0.5, 0.5]),
    "sum within tolerance": dict(probs=[0.2504, 0.25, 0.25, 0.25]),
    "window order": dict(window_start_ns=FUTURE_NS),
    "zero start": dict(window_start_ns=0),
    "inference before window end": dict(inference_start_ns=1),
    "inference ends first": dict(inference_end_ns=2),
    "future send": dict(send_ns=FUTURE_NS),
    "quality": dict(quality=1.5),
    "nan quality": dict(quality=float("nan")),
}


def _refusal(check, *args) -> str | None:
    try:
        check(*args)
    except InvalidFrame as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_a_batch_is_refused_as_its_bad_frame_alone_is(case: str) -> None:
    now = time.time_ns()
    bad = frame(2)
    for key, value in MUTATIONS[case].items():
        if isinstance(value, list):
            del getattr(bad, key)[:]
            getattr(bad, key).extend(value)
        else:
            setattr(bad, key, value)
    alone = _refusal(validate_frame, bad, LABELS, now, TOLERANCE_NS)
    in_batch = _refusal(validate_batch, [frame(1), bad, frame(3)], LABELS, now, TOLERANCE_NS)
    assert in_batch == alone
    assert (alone is None) == (case in ("valid", "largest seq", "sum within tolerance")), alone


def test_the_first_bad_frame_is_named() -> None:
    frames = [frame(1), frame(2, quality=2.0), frame(3, probs=[1.0, 1.0, 0.0, 0.0])]
    with pytest.raises(InvalidFrame, match=r"frame dev-1/hr#2: quality") as err:
        validate_batch(frames, LABELS, time.time_ns(), TOLERANCE_NS)
    assert err.value.frame == ("hr", 2)


def test_each_frame_is_checked_against_its_own_modality_s_label_set() -> None:
    labels = {**LABELS, "eeg": ("low", "high")}
    good = [frame(1), frame(1, modality="eeg", labels=["low", "high"], probs=[0.3, 0.7])]
    validate_batch(good, labels, time.time_ns(), TOLERANCE_NS)
    bad = [*good, frame(2, modality="eeg", labels=["low", "high"], probs=[0.3, 0.6])]
    with pytest.raises(InvalidFrame, match=r"frame dev-1/eeg#2: probs sum to 0.900000"):
        validate_batch(bad, labels, time.time_ns(), TOLERANCE_NS)


def test_the_columns_are_the_frames_fields() -> None:
    now = time.time_ns()
    frames = [frame(1, device="a", subject="s", modality="eeg"), frame(7)]
    cols = validate_batch(frames, LABELS, now, TOLERANCE_NS)
    assert cols.device_ids == ["a", "dev-1"] and cols.subject_ids == ["s", "subj-1"]
    assert cols.modalities == ["eeg", "hr"] and cols.seqs == [1, 7]
    assert cols.times == [
        (f.window_end_ns, f.inference_start_ns, f.inference_end_ns, f.send_ns, now) for f in frames
    ]


def test_frames_without_probs_anywhere_in_the_batch_are_refused_by_name() -> None:
    """Empty rows at the start, middle or end of the batch's probabilities are refused, never a crash."""
    now = time.time_ns()
    for frames in ([frame(1, probs=[]), frame(2)], [frame(1), frame(2, probs=[])], [frame(1, probs=[])]):
        bad = next(f for f in frames if not f.probs)
        with pytest.raises(InvalidFrame, match=rf"frame dev-1/hr#{bad.seq}: probs has 0 values"):
            validate_batch(frames, LABELS, now, TOLERANCE_NS)
    with pytest.raises(InvalidFrame, match=r"device_id must match"):
        validate_batch(
            list(ingest_pb2.ScoreBatch.FromString(b"\n\x00\n\x00").frames), LABELS, now, TOLERANCE_NS
        )
