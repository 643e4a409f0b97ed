"""Frame validation: every refusal names the field and what is wrong with it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from operator import attrgetter

import numpy as np

from mmer.v1 import ingest_pb2

ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
PROB_TOLERANCE = 1e-3


class InvalidFrame(ValueError):
    """A frame the coordinator will not store; `frame` names it (modality, seq) when one frame is at fault."""

    def __init__(self, message: str, frame: tuple[str, int] | None = None) -> None:
        super().__init__(message)
        self.frame = frame


_valid_ids_seen: set[str] = set()  # ids seen to match ID: most frames repeat a few thousand ids
_MAX_VALID_IDS = 100_000


def _valid_id(value: str) -> bool:
    if value in _valid_ids_seen:
        return True
    if not ID.match(value):
        return False
    if len(_valid_ids_seen) >= _MAX_VALID_IDS:
        _valid_ids_seen.clear()
    _valid_ids_seen.add(value)
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


# What fusion keeps of a frame: (window end, coordinator receive time, probs, labels, device, seq, model
# version, taxonomy, truth label, inference start, inference end, send time). Plain values only, no
# message: the garbage collector untracks such tuples, and a history of messages (which it tracks) made
# its full collections walk every frame the fusion engines remember.
Received = tuple[int, int, tuple[float, ...], tuple[str, ...], str, int, int, str, str, int, int, int]


@dataclass(frozen=True)
class BatchColumns:
    """The fields of a batch's frames that ingest and fusion read, read once per batch (row i: frames[i])."""

    frames: list[ingest_pb2.ScoreFrame]
    device_ids: list[str]
    subject_ids: list[str]
    modalities: list[str]
    seqs: list[int]
    model_versions: list[int]
    probs: list[list[float]]
    labels: list[tuple[str, ...]]  # each frame's label set (one shared tuple per modality)
    taxonomies: list[str]
    truth_labels: list[str]
    times: np.ndarray  # int64 (n, 5): window end, inference start, inference end, send, and receive time
    traced: list[int]  # rows whose window was sampled for tracing (they carry a traceparent)

    @cached_property
    def records(self) -> list[Received]:
        """Each row as fusion keeps it, built once for the batch whichever fusion engines take its rows."""
        ends, inference_starts, inference_ends, sends, receives = self.times.T.tolist()
        return list(
            zip(
                ends,
                receives,
                map(tuple, self.probs),
                self.labels,
                self.device_ids,
                self.seqs,
                self.model_versions,
                self.taxonomies,
                self.truth_labels,
                inference_starts,
                inference_ends,
                sends,
                strict=True,
            )
        )


_read_row = attrgetter(
    "device_id",
    "subject_id",
    "modality",
    "seq",
    "model_version",
    "window_start_ns",
    "window_end_ns",
    "inference_start_ns",
    "inference_end_ns",
    "send_ns",
    "quality",
    "traceparent",
    "taxonomy",
    "truth_label",
)


def validate_batch(
    frames: Sequence[ingest_pb2.ScoreFrame],
    labels_by_modality: dict[str, tuple[str, ...]],
    now_ns: int,
    tolerance_ns: int,
) -> BatchColumns:
    """Raise InvalidFrame for the batch's first bad frame (as validate_frame words it), else its columns.

    Each field of each frame is read once (reading upb fields is most of the cost), in one pass that
    builds columns; the checks then run over whole columns with numpy, and only a batch with a suspect
    row goes through validate_frame, frame by frame, for the wording (or, for a sum at the tolerance's
    edge, to accept it)."""
    frames = list(frames)
    n = len(frames)
    devices, subjects, modalities, seqs, versions, *numbers, quality, parents, taxonomies, truths = (
        list(zip(*map(_read_row, frames), strict=True)) or [()] * 14
    )
    probs = [f.probs[:] for f in frames]  # slicing copies a repeated field far faster than list()
    label_lists = {m: list(v) for m, v in labels_by_modality.items()}  # as f.labels[:] reads them
    expected = [label_lists.get(m) for m in modalities]
    t = np.array(numbers, dtype=np.int64).reshape(5, n)  # start, end, inference start/end, send
    start, end, inference_start, inference_end, send = t
    sizes = np.fromiter(map(len, probs), np.int64, count=n)
    flat = np.fromiter(chain.from_iterable(probs), np.float64, count=int(sizes.sum()))
    sums = np.bincount(np.repeat(np.arange(n), sizes), weights=flat, minlength=n)  # rows may be empty
    ok = (  # NaN or infinity fail every comparison
        (end > start)
        & (start > 0)
        & (end <= inference_start)
        & (inference_start <= inference_end)
        & (np.maximum(np.maximum(end, inference_end), send) <= now_ns + tolerance_ns)
        & (np.abs(sums - 1.0) <= PROB_TOLERANCE)
    )
    quality = np.array(quality, dtype=np.float64)
    ok &= (quality >= 0.0) & (quality <= 1.0)
    probs_in_range = len(flat) == 0 or bool(((flat >= 0.0) & (flat <= 1.0)).all())
    labels_ok = all(
        f.labels[:] == e and len(p) == len(e)
        for f, p, e in zip(frames, probs, expected, strict=True)
        if e is not None
    )
    if not (
        ok.all()
        and (not n or min(seqs) >= 1)
        and probs_in_range
        and labels_ok
        and None not in expected
        and _valid_ids(devices, subjects)
    ):
        for f in frames:  # raises for the first bad frame, but for a sum at the edge
            validate_frame(f, labels_by_modality, now_ns, tolerance_ns)
    times = np.empty((n, 5), dtype=np.int64)
    times[:, :4] = t[1:].T
    times[:, 4] = now_ns
    return BatchColumns(
        frames,
        list(devices),
        list(subjects),
        list(modalities),
        list(seqs),
        list(versions),
        probs,
        [labels_by_modality[m] for m in modalities],
        list(taxonomies),
        list(truths),
        times,
        [i for i, parent in enumerate(parents) if parent],
    )


_read_stored = attrgetter(
    "device_id",
    "subject_id",
    "modality",
    "seq",
    "model_version",
    "window_end_ns",
    "inference_start_ns",
    "inference_end_ns",
    "send_ns",
    "traceparent",
    "taxonomy",
    "truth_label",
)


def read_columns(frames: Sequence[ingest_pb2.ScoreFrame], receive_ns: Sequence[int]) -> BatchColumns:
    """The columns of frames validated when they were stored (a shard's history, its inbox), each with
    the time the coordinator received it."""
    frames = list(frames)
    devices, subjects, modalities, seqs, versions, *numbers, parents, taxonomies, truths = (
        list(zip(*map(_read_stored, frames), strict=True)) or [()] * 12
    )
    times = np.array([*numbers, receive_ns], dtype=np.int64).reshape(5, len(frames)).T.copy()
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}
    labels = [shared.setdefault(key, key) for key in (tuple(f.labels) for f in frames)]
    return BatchColumns(
        frames,
        list(devices),
        list(subjects),
        list(modalities),
        list(seqs),
        list(versions),
        [f.probs[:] for f in frames],
        labels,
        list(taxonomies),
        list(truths),
        times,
        [i for i, parent in enumerate(parents) if parent],
    )


def _valid_ids(*columns: Sequence[str]) -> bool:
    """Every id in the columns matches ID (ids already seen to match are remembered)."""
    fresh = set().union(*columns) - _valid_ids_seen
    return all(_valid_id(value) for value in fresh)


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
