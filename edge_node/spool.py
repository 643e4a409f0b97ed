"""The on-disk spool: every scored frame is written here before it is sent, and leaves only when acked.

Records are appended to segment files as [length u32][crc32 u32][ScoreFrame
bytes]; a torn or corrupted tail (power loss mid-write) is cut at recovery.
Acked sequence numbers per modality are kept in a small file replaced
atomically; a segment file is deleted once every frame in it is acked. When
the spool holds max_frames unacked frames, the policy decides: drop-oldest
(the default) forgets the oldest unacked frame, drop-newest refuses the new
one; either way every dropped frame is counted.
"""

from __future__ import annotations

import heapq
import json
import os
import struct
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from mmer.v1 import ingest_pb2

HEADER = struct.Struct("<II")
SEGMENT_FRAMES = 4096
POLICIES = ("drop-oldest", "drop-newest")


@dataclass
class Pending:
    """An unacked frame, its arrival order and the segment it lives in."""

    order: int
    segment: int
    frame: ingest_pb2.ScoreFrame


class Spool:
    """Bounded, durable queue of frames awaiting acknowledgement."""

    def __init__(
        self, directory: Path, max_frames: int = 100_000, policy: str = "drop-oldest", fsync: bool = False
    ):
        if policy not in POLICIES:
            raise ValueError(f"spool: unknown policy {policy!r} (known: {', '.join(POLICIES)})")
        if max_frames < 1:
            raise ValueError("spool: max_frames must be >= 1")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_frames, self.policy, self.fsync = max_frames, policy, fsync
        self.pending: dict[str, deque[Pending]] = {}  # per modality, in seq order
        self._order = 0
        self.acked: dict[str, int] = {}
        self.dropped = 0
        self.bytes_written = 0
        self._segment = 0
        self._in_segment = 0
        self._fh = None
        self._recover()

    @property
    def depth(self) -> int:
        """Unacked frames held."""
        return sum(len(q) for q in self.pending.values())

    def _push(self, segment: int, frame: ingest_pb2.ScoreFrame) -> None:
        self._order += 1
        self.pending.setdefault(frame.modality, deque()).append(Pending(self._order, segment, frame))

    def _drop_oldest(self) -> None:
        oldest = min((q for q in self.pending.values() if q), key=lambda q: q[0].order)
        oldest.popleft()

    def append(self, frames: list[ingest_pb2.ScoreFrame]) -> int:
        """Persist frames (flushed to the OS before returning); returns how many were dropped by the policy."""
        dropped = 0
        for frame in frames:
            if self.depth >= self.max_frames:
                dropped += 1
                if self.policy == "drop-newest":
                    continue
                self._drop_oldest()
            payload = frame.SerializeToString()
            self._writer().write(HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            self.bytes_written += HEADER.size + len(payload)
            self._push(self._segment, frame)
            self._in_segment += 1
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.dropped += dropped
        return dropped

    def ack(self, modality: str, seq: int) -> int:
        """Everything of this modality up to seq is durable upstream; returns frames released."""
        if seq <= self.acked.get(modality, 0):
            return 0
        self.acked[modality] = seq
        queue = self.pending.get(modality, deque())
        released = 0
        while queue and queue[0].frame.seq <= seq:
            queue.popleft()
            released += 1
        self._save_acks()
        self._delete_done_segments()
        return released

    def unacked(self) -> list[ingest_pb2.ScoreFrame]:
        """Frames to (re)send, in the order they were spooled."""
        return [p.frame for p in heapq.merge(*self.pending.values(), key=lambda p: p.order)]

    def close(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None

    def _writer(self):
        if self._fh is None or self._in_segment >= SEGMENT_FRAMES:
            if self._fh:
                self._fh.close()
                self._segment += 1
            self._in_segment = 0
            self._fh = (self.dir / f"{self._segment:012d}.seg").open("ab")
        return self._fh

    def _save_acks(self) -> None:
        tmp = self.dir / "acks.json.tmp"
        tmp.write_text(json.dumps(self.acked))
        os.replace(tmp, self.dir / "acks.json")

    def _delete_done_segments(self) -> None:
        oldest_live = min([q[0].segment for q in self.pending.values() if q] + [self._segment])
        for path in self.dir.glob("*.seg"):
            if int(path.stem) < oldest_live:
                path.unlink(missing_ok=True)

    def _recover(self) -> None:
        acks = self.dir / "acks.json"
        if acks.exists():
            try:
                self.acked = {k: int(v) for k, v in json.loads(acks.read_text()).items()}
            except (ValueError, AttributeError):
                self.acked = {}  # unreadable: resending acked frames is safe, the coordinator de-duplicates
        segments = sorted(self.dir.glob("*.seg"), key=lambda p: int(p.stem))
        for path in segments:
            index = int(path.stem)
            data = path.read_bytes()
            offset = 0
            while offset + HEADER.size <= len(data):
                length, crc = HEADER.unpack_from(data, offset)
                payload = data[offset + HEADER.size : offset + HEADER.size + length]
                if len(payload) < length or zlib.crc32(payload) != crc:
                    break
                frame = ingest_pb2.ScoreFrame.FromString(payload)
                if frame.seq > self.acked.get(frame.modality, 0):
                    self._push(index, frame)
                offset += HEADER.size + length
            if offset < len(data):
                with path.open("r+b") as fh:  # cut the torn tail so appends continue from a clean record
                    fh.truncate(offset)
            self._segment = index
        while self.depth > self.max_frames:
            self._drop_oldest()
            self.dropped += 1
        self._segment = self._segment + 1 if segments else 0
