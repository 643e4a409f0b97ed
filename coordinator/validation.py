"""Frame validation: every refusal names the field and what is wrong with it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from mmer.v1 import ingest_pb2

ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
PROB_TOLERANCE = 1e-3


class InvalidFrame(ValueError):
    """A frame the coordinator will not store; `frame` names it (modality, seq) when one frame is at fault."""

    def __init__(self, message: str, frame: tuple[str, int] | None = None) -> None:
        super().__init__(message)
        self.frame = frame


_valid_ids: set[str] = set()  # ids seen to match ID: most frames repeat a few thousand ids
_MAX_VALID_IDS = 100_000


def _valid_id(value: str) -> bool:
    if value in _valid_ids:
        return True
    if not ID.match(value):
        return False
    if len(_valid_ids) >= _MAX_VALID_IDS:
        _valid_ids.clear()
    _valid_ids.add(value)
    return True


def frame_is_valid(
    frame: ingest_pb2.ScoreFrame,
    labels_by_modality: dict[str, tuple[str, ...]],
    now_ns: int,
    tolerance_ns: int,
) -> bool:
    """The same checks as validate_frame, without building messages: the per-frame fast path."""
    expected = labels_by_modality.get(frame.modality)
    if expected is None or frame.seq < 1 or not (_valid_id(frame.device_id) and _valid_id(frame.subject_id)):
        return False
    probs = frame.probs[:]  # slicing copies a repeated field far faster than list() or tuple()
    if len(probs) != len(expected) or tuple(frame.labels[:]) != expected:
        return False
    for p in probs:
        if not 0.0 <= p <= 1.0:
            return False
    if abs(sum(probs) - 1.0) > PROB_TOLERANCE:
        return False
    end, inference_end = frame.window_end_ns, frame.inference_end_ns
    if not (end > frame.window_start_ns > 0 and end <= frame.inference_start_ns <= inference_end):
        return False
    if max(end, inference_end, frame.send_ns) > now_ns + tolerance_ns:
        return False
    return 0.0 <= frame.quality <= 1.0


class BatchColumns(NamedTuple):
    """The fields of a batch's frames that ingest reads after validation, read once per batch."""

    device_ids: list[str]
    subject_ids: list[str]
    modalities: list[str]
    seqs: list[int]
    times: np.ndarray  # int64 (n, 5): window end, inference start, inference end, send, and now_ns


def validate_batch(
    frames: Sequence[ingest_pb2.ScoreFrame],
    labels_by_modality: dict[str, tuple[str, ...]],
    now_ns: int,
    tolerance_ns: int,
) -> BatchColumns:
    """Raise InvalidFrame for the batch's first bad frame (as validate_frame words it), else its columns.

    One pass reads each field once, checks it and keeps what the rest of ingest reads: reading upb fields
    is most of the cost. Plain Python beats numpy here: the edge sends a few frames per batch when the
    coordinator keeps up, and numpy's fixed cost per call outweighed the per-frame work up to hundreds."""
    expected = {m: list(v) for m, v in labels_by_modality.items()}
    latest = now_ns + tolerance_ns
    device_ids, subject_ids, modalities, seqs, times = [], [], [], [], []
    for f in frames:
        device, subject, modality, seq = f.device_id, f.subject_id, f.modality, f.seq
        start, end, inference_start, inference_end, send = (
            f.window_start_ns,
            f.window_end_ns,
            f.inference_start_ns,
            f.inference_end_ns,
            f.send_ns,
        )
        probs = f.probs[:]  # slicing copies a repeated field far faster than list() or tuple()
        if not (  # NaN or infinity make the sum fail
            seq >= 1
            and _valid_id(device)
            and _valid_id(subject)
            and f.labels[:] == expected.get(modality)
            and len(probs) == len(expected[modality])
            and min(probs) >= 0.0
            and max(probs) <= 1.0
            and abs(sum(probs) - 1.0) <= PROB_TOLERANCE
            and end > start > 0
            and end <= inference_start <= inference_end
            and max(end, inference_end, send) <= latest
            and 0.0 <= f.quality <= 1.0
        ):
            validate_frame(f, labels_by_modality, now_ns, tolerance_ns)  # raises, but for a sum at the edge
        device_ids.append(device)
        subject_ids.append(subject)
        modalities.append(modality)
        seqs.append(seq)
        times.append((end, inference_start, inference_end, send, now_ns))
    return BatchColumns(
        device_ids, subject_ids, modalities, seqs, np.array(times, dtype=np.int64).reshape(-1, 5)
    )


def validate_frame(
    frame: ingest_pb2.ScoreFrame,
    labels_by_modality: dict[str, tuple[str, ...]],
    now_ns: int,
    tolerance_ns: int,
) -> None:
    """Raise InvalidFrame naming the frame (so the edge can set it aside) and its first bad field."""
    if frame_is_valid(frame, labels_by_modality, now_ns, tolerance_ns):
        return
    problem = _first_problem(frame, labels_by_modality, now_ns, tolerance_ns)
    if problem is not None:  # None: only the fast path's float sum disagreed at the tolerance's edge
        where = f"frame {frame.device_id or '?'}/{frame.modality or '?'}#{frame.seq}"
        raise InvalidFrame(f"{where}: {problem}", (frame.modality, frame.seq))


def _first_problem(
    frame: ingest_pb2.ScoreFrame,
    labels_by_modality: dict[str, tuple[str, ...]],
    now_ns: int,
    tolerance_ns: int,
) -> str | None:
    if not ID.match(frame.device_id):
        return "device_id must match [A-Za-z0-9_.-]{1,128}"
    if not ID.match(frame.subject_id):
        return "subject_id must match [A-Za-z0-9_.-]{1,128}"
    if frame.modality not in labels_by_modality:
        return f"modality {frame.modality!r} is unknown (known: {', '.join(labels_by_modality)})"
    if frame.seq < 1:
        return "seq must be >= 1"
    expected = labels_by_modality[frame.modality]
    if tuple(frame.labels) != expected:
        return f"labels {list(frame.labels)} differ from the registry's {list(expected)}"
    if len(frame.probs) != len(expected):
        return f"probs has {len(frame.probs)} values, labels {len(expected)}"
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in frame.probs):
        return "probs must be finite and within [0, 1]"
    total = math.fsum(frame.probs)
    if abs(total - 1.0) > PROB_TOLERANCE:
        return f"probs sum to {total:.6f}, not 1 ± {PROB_TOLERANCE}"
    if not frame.window_end_ns > frame.window_start_ns > 0:
        return "window_end_ns must be after window_start_ns (both > 0)"
    if not frame.window_end_ns <= frame.inference_start_ns <= frame.inference_end_ns:
        return "inference_start_ns/inference_end_ns must not precede the window end"
    latest = max(frame.window_end_ns, frame.inference_end_ns, frame.send_ns)
    if latest > now_ns + tolerance_ns:
        return (
            f"timestamps are {(latest - now_ns) / 1e6:.0f} ms in the future (tolerance "
            f"{tolerance_ns / 1e6:.0f} ms): is the device's clock synced?"
        )
    if not 0.0 <= frame.quality <= 1.0:
        return "quality must be within [0, 1]"
    return None
