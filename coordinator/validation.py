"""Frame validation: every refusal names the field and what is wrong with it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter

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


# What fusion keeps of a frame: (window end, coordinator receive time, probs, labels, device, seq, model
# version, taxonomy, truth label, inference start, inference end, send time). Plain values only, no
# message: the garbage collector untracks such tuples, and a history of messages (which it tracks) made
# its full collections walk every frame the fusion engines remember.
Received = tuple[int, int, tuple[float, ...], tuple[str, ...], str, int, int, str, str, int, int, int]
# A frame's times: window end, inference start, inference end, send, and coordinator receive time (ns).
Times = tuple[int, int, int, int, int]


@dataclass
class BatchColumns:
    """The fields of a batch's frames that ingest and fusion read, read once per batch (row i: frames[i]);
    never changed once built (a plain dataclass: a frozen one cost more to build than a small batch's checks)."""

    frames: list[ingest_pb2.ScoreFrame]
    device_ids: list[str]
    subject_ids: list[str]
    modalities: list[str]
    seqs: list[int]
    model_versions: list[int]
    probs: list[list[float]]
    labels: list[tuple[str, ...]]  # each frame's label set (one shared tuple per label set)
    taxonomies: list[str]
    truth_labels: list[str]
    times: list[Times]
    traced: list[int]  # rows whose window was sampled for tracing (they carry a traceparent)

    @cached_property
    def records(self) -> list[Received]:
        """Each row as fusion keeps it, built once for the batch whichever fusion engines take its rows."""
        ends, inference_starts, inference_ends, sends, receives = (
            list(zip(*self.times, strict=True)) or [()] * 5
        )
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
Row = tuple[str, str, str, int, int, int, int, int, int, int, float, str, str, str]


def _columns(
    frames: list[ingest_pb2.ScoreFrame],
    rows: list[Row],
    probs: list[list[float]],
    labels: list[tuple[str, ...]],
    receives: Sequence[int],
) -> BatchColumns:
    """The columns of frames whose fields were read (rows: _read_row of each), with their receive times."""
    (
        devices,
        subjects,
        modalities,
        seqs,
        versions,
        _,
        ends,
        starts,
        inference_ends,
        sends,
        _,
        parents,
        taxonomies,
        truths,
    ) = map(list, zip(*rows, strict=True)) if rows else [[]] * 14
    return BatchColumns(
        frames,
        devices,
        subjects,
        modalities,
        seqs,
        versions,
        probs,
        labels,
        taxonomies,
        truths,
        list(zip(ends, starts, inference_ends, sends, receives, strict=True)),
        [i for i, parent in enumerate(parents) if parent],
    )


def validate_batch(
    frames: Sequence[ingest_pb2.ScoreFrame],
    labels_by_modality: dict[str, tuple[str, ...]],
    now_ns: int,
    tolerance_ns: int,
) -> BatchColumns:
    """Raise InvalidFrame for the batch's first bad frame (as validate_frame words it), else its columns.

    Each field of each frame is read once (reading upb fields is most of the cost) and checked in one
    plain pass: edge nodes send a frame or two per batch when the coordinator keeps up, and any per-batch
    array set-up cost more than the checks. A frame a check doubts goes through validate_frame for the
    wording (or, for a sum at the tolerance's edge, to accept it)."""
    frames = list(frames)
    rows = list(map(_read_row, frames))
    probs = [f.probs[:] for f in frames]  # slicing copies a repeated field far faster than list()
    expected = {m: list(v) for m, v in labels_by_modality.items()}
    latest = now_ns + tolerance_ns
    for f, row, p in zip(frames, rows, probs, strict=True):
        device, subject, modality, seq = row[:4]
        start, end, inference_start, inference_end, send, quality = row[5:11]
        labels = expected.get(modality)
        if not (
            labels is not None
            and seq >= 1
            and _valid_id(device)
            and _valid_id(subject)
            and len(p) == len(labels) > 0
            and f.labels == labels  # a repeated field equals a list of its values (not a tuple)
            and min(p) >= 0.0
            and max(p) <= 1.0
            and abs(sum(p) - 1.0) <= PROB_TOLERANCE  # NaN fails every comparison
            and end > start > 0
            and end <= inference_start <= inference_end
            and max(end, inference_end, send) <= latest
            and 0.0 <= quality <= 1.0
        ):
            validate_frame(f, labels_by_modality, now_ns, tolerance_ns)
    return _columns(frames, rows, probs, [labels_by_modality[r[2]] for r in rows], [now_ns] * len(frames))


def read_columns(frames: Sequence[ingest_pb2.ScoreFrame], receive_ns: Sequence[int]) -> BatchColumns:
    """The columns of frames validated when they were stored (a shard's history, its inbox), each with
    the time the coordinator received it."""
    frames = list(frames)
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}
    labels = [shared.setdefault(key, key) for key in (tuple(f.labels) for f in frames)]
    return _columns(frames, list(map(_read_row, frames)), [f.probs[:] for f in frames], labels, receive_ns)


def validate_frame(
    frame: ingest_pb2.ScoreFrame,
    labels_by_modality: dict[str, tuple[str, ...]],
    now_ns: int,
    tolerance_ns: int,
) -> None:
    """Raise InvalidFrame naming the frame (so the edge can set it aside) and its first bad field."""
    problem = _first_problem(frame, labels_by_modality, now_ns, tolerance_ns)
    if (
        problem is not None
    ):  # None: valid (validate_batch's plain sum may doubt a sum at the tolerance's edge)
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
