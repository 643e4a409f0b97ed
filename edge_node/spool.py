"""The on-disk spool: every frame is persisted before it is sent and leaves only when acked.

Layout: a directory of append-only segments `seg-<n>.log`. Each record is
`<u32 length><u32 crc32><u8 kind><payload>`; kinds are FRAME (modality, seq,
serialized ScoreFrame), TRIM (modality, seq: acked or dropped up to seq) and
CHECKPOINT (next seq and trim watermark of every modality, written first in
every segment so a restart never reuses a sequence number even after every
older segment was deleted). A segment whose frames are all trimmed is deleted.
Recovery replays the segments in order and stops at the first torn or
corrupted record (a crash mid-write), which is truncated away.

Durability (`sync`): a record is in the OS page cache once `append` returns,
so a crash of the process loses nothing under any policy. Power loss or a
kernel crash loses whatever was not fsynced:

- `always`: fsync after every frame. Nothing is lost; ~2 ms a frame on an
  ordinary disk, so a few hundred frames/s.
- `batch` (default): group commit. `commit()` fsyncs everything written so
  far and the streamer calls it before it sends a batch, so every frame the
  coordinator has seen (and every seq it knows) is on disk: after power loss
  the node never reuses a seq the coordinator would drop as a duplicate.
  Frames not yet sent (e.g. while disconnected) are fsynced at least every
  `batch_interval_s`; that much is all power loss can take.
- `never`: leave write-back to the OS (~30 s on Linux). After power loss the
  node may lose frames the coordinator never acked and reuse their seqs.

Acks (TRIM records) are not fsynced by `batch`: losing one only resends
frames, which the coordinator de-duplicates.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

FRAME, TRIM, CHECKPOINT = 1, 2, 3
POLICIES = ("drop-oldest", "drop-newest")
SYNC_POLICIES = ("always", "batch", "never")
_HEAD = struct.Struct("<IIB")
_KEY = struct.Struct("<BQ")  # modality name length, seq


class Spool:
    """Bounded, restart-safe store of unacked frames, per modality in seq order."""

    def __init__(
        self,
        directory: str | Path,
        max_frames: int = 100_000,
        policy: str = "drop-oldest",
        segment_bytes: int = 4 << 20,
        sync: str = "batch",
        batch_interval_s: float = 1.0,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"spool policy: must be one of {POLICIES}, got {policy!r}")
        if sync not in SYNC_POLICIES:
            raise ValueError(f"spool sync: must be one of {SYNC_POLICIES}, got {sync!r}")
        if not batch_interval_s > 0:
            raise ValueError(f"spool batch_interval_s: must be > 0, got {batch_interval_s}")
        if max_frames < 1:
            raise ValueError(f"spool max_frames: must be >= 1, got {max_frames}")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_frames = max_frames
        self.policy = policy
        self.segment_bytes = segment_bytes
        self.sync_policy = sync
        self.batch_interval_s = batch_interval_s
        self.syncs = 0
        self._dirty = False
        self._last_sync = time.monotonic()
        self._lock = threading.Lock()
        self._frames: dict[str, deque[tuple[int, int, int, bytes]]] = {}  # (order, seq, segment, payload)
        self._next_seq: dict[str, int] = {}
        self._trimmed_to: dict[str, int] = {}
        self._live: dict[int, int] = {}
        self._order = 0
        self._depth = 0
        self.dropped = 0
        self.refused = 0  # frames the coordinator refused as invalid, set aside instead of resent
        self._refused: set[tuple[str, int]] = set()
        self.appended = 0
        self.trimmed = 0
        self._recover()
        self._segment = max(self._live, default=0) + 1
        self._fd = -1
        self._size = 0
        self._roll()

    # ---------------------------------------------------------------- public
    def next_seq(self, modality: str) -> int:
        """The seq the next frame of this modality gets (starting at 1)."""
        with self._lock:
            return self._next_seq.get(modality, 1)

    def append(self, modality: str, payload: bytes, seq: int | None = None) -> int:
        """Persist one frame; returns its seq, or 0 when the drop-newest policy refused it (counted)."""
        with self._lock:
            want = self._next_seq.get(modality, 1)
            if seq is None:
                seq = want
            elif seq != want:
                raise ValueError(f"spool {modality}: seq {seq} out of order (expected {want})")
            if self._depth >= self.max_frames:
                if self.policy == "drop-newest":
                    self.dropped += 1
                    return 0
                self._drop_oldest()
            self._next_seq[modality] = seq + 1
            self._write(FRAME, _key(modality, seq) + payload)
            self._frames.setdefault(modality, deque()).append((self._order, seq, self._segment, payload))
            self._order += 1
            self._live[self._segment] = self._live.get(self._segment, 0) + 1
            self._depth += 1
            self.appended += 1
            if self.sync_policy == "always" or (
                self.sync_policy == "batch" and time.monotonic() - self._last_sync >= self.batch_interval_s
            ):
                self._fsync(self._fd)
            return seq

    def ack(self, modality: str, acked_seq: int) -> int:
        """Trim every frame of modality with seq <= acked_seq; returns how many left."""
        with self._lock:
            n = self._trim(modality, acked_seq)
            self._release_refused(modality)
            return n

    def refuse(self, modality: str, seq: int) -> bool:
        """Set aside a frame the coordinator refused as invalid, so it does not block the stream forever.

        It is never sent again and leaves the spool (counted in `refused`) once every frame before it
        has left; the coordinator then sees a sequence gap, which it accepts and counts. False when the
        spool does not hold that frame.
        """
        with self._lock:
            frames = self._frames.get(modality, ())
            if (modality, seq) in self._refused or not any(f[1] == seq for f in frames):
                return False
            self._refused.add((modality, seq))
            self.refused += 1
            self._release_refused(modality)
            return True

    def unsent(self, after: dict[str, int], limit: int = 1024) -> list[tuple[str, int, bytes]]:
        """Up to limit frames with seq > after[modality], oldest first across modalities."""
        with self._lock:
            out: list[tuple[int, str, int, bytes]] = []
            for m, frames in self._frames.items():
                floor = after.get(m, 0)
                for order, seq, _, payload in frames:
                    if seq > floor and (m, seq) not in self._refused:
                        out.append((order, m, seq, payload))
                        if len(out) >= limit * 4:
                            break
            out.sort(key=lambda r: r[0])
            return [(m, s, p) for _, m, s, p in out[:limit]]

    def acked(self) -> dict[str, int]:
        """Per modality, the seq up to which frames have left the spool."""
        with self._lock:
            return dict(self._trimmed_to)

    @property
    def depth(self) -> int:
        return self._depth

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob("seg-*.log"))

    @property
    def uncommitted(self) -> bool:
        """Records were written since the last fsync and the policy wants them synced."""
        return self._dirty and self.sync_policy != "never"

    def commit(self) -> bool:
        """Make every record written so far durable (unless the policy is `never`); True if it fsynced.

        Called by the streamer before each batch it sends. The fsync runs on a duplicate of the
        segment's descriptor outside the lock, so the inference thread keeps appending meanwhile.
        """
        with self._lock:
            if self.sync_policy == "never" or not self._dirty or self._fd < 0:
                return False
            self._dirty = False
            fd = os.dup(self._fd)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self.syncs += 1
            self._last_sync = time.monotonic()
        return True

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                if self.sync_policy != "never" and self._dirty:
                    self._fsync(self._fd)
                os.close(self._fd)
                self._fd = -1

    # --------------------------------------------------------------- private
    def _fsync(self, fd: int) -> None:
        os.fsync(fd)
        self._dirty = False
        self.syncs += 1
        self._last_sync = time.monotonic()

    def _drop_oldest(self) -> None:
        oldest = min((fr[0][0], m) for m, fr in self._frames.items() if fr)[1]
        seq = self._frames[oldest][0][1]
        n = self._trim(oldest, seq)
        self.trimmed -= n
        self.dropped += n

    def _release_refused(self, modality: str) -> None:
        frames = self._frames.get(modality)
        while frames and (modality, frames[0][1]) in self._refused:
            self._refused.discard((modality, frames[0][1]))
            n = self._trim(modality, frames[0][1])
            self.trimmed -= n  # refused, not acked

    def _trim(self, modality: str, upto: int) -> int:
        frames = self._frames.get(modality)
        n = 0
        while frames and frames[0][1] <= upto:
            _, _, seg, _ = frames.popleft()
            n += 1
            self._live[seg] -= 1
            if self._live[seg] == 0 and seg != self._segment:
                del self._live[seg]
                self._path(seg).unlink(missing_ok=True)
        if upto > self._trimmed_to.get(modality, 0):
            self._trimmed_to[modality] = upto
            self._write(TRIM, _key(modality, upto))
        self._depth -= n
        self.trimmed += n
        return n

    def _path(self, segment: int) -> Path:
        return self.dir / f"seg-{segment:08d}.log"

    def _write(self, kind: int, body: bytes) -> None:
        crc = zlib.crc32(body, zlib.crc32(bytes([kind])))
        rec = _HEAD.pack(len(body), crc, kind) + body
        os.write(self._fd, rec)
        self._dirty = True
        self._size += len(rec)
        if kind == FRAME and self._size > self.segment_bytes:
            self._roll()

    def _roll(self) -> None:
        old = self._segment if self._fd >= 0 else None
        if self._fd >= 0:
            if self.sync_policy != "never" and self._dirty:
                self._fsync(self._fd)
            os.close(self._fd)
            self._segment += 1
        self._fd = os.open(self._path(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.sync_policy != "never":
            self._sync_dir()
        self._size = 0
        self._live.setdefault(self._segment, 0)
        if old is not None and self._live.get(old) == 0:
            del self._live[old]
            self._path(old).unlink(missing_ok=True)
        ckpt = b"".join(
            _key(m, self._next_seq[m]) + struct.pack("<Q", self._trimmed_to.get(m, 0)) for m in self._next_seq
        )
        self._write(CHECKPOINT, ckpt)

    def _sync_dir(self) -> None:
        """fsync the directory, so a new segment's name survives power loss too."""
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _recover(self) -> None:
        for path in sorted(self.dir.glob("seg-*.log")):
            seg = int(path.stem.split("-")[1])
            self._live.setdefault(seg, 0)
            data = path.read_bytes()
            pos, good = 0, 0
            while pos + _HEAD.size <= len(data):
                length, crc, kind = _HEAD.unpack_from(data, pos)
                body = data[pos + _HEAD.size : pos + _HEAD.size + length]
                if len(body) != length or zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
                    break
                self._apply(kind, body, seg)
                pos += _HEAD.size + length
                good = pos
            if good != len(data):
                log.warning(
                    "spool %s: %d corrupted/torn bytes at the tail dropped", path.name, len(data) - good
                )
                with open(path, "r+b") as fh:
                    fh.truncate(good)
        for seg in [s for s, n in self._live.items() if n == 0]:
            del self._live[seg]
            self._path(seg).unlink(missing_ok=True)
        self.appended = self.trimmed = 0

    def _apply(self, kind: int, body: bytes, seg: int) -> None:
        if kind == CHECKPOINT:
            pos = 0
            while pos < len(body):
                n, nxt = _KEY.unpack_from(body, pos)
                m = body[pos + _KEY.size : pos + _KEY.size + n].decode()
                (trim,) = struct.unpack_from("<Q", body, pos + _KEY.size + n)
                self._next_seq[m] = max(self._next_seq.get(m, 1), nxt)
                self._trim_quiet(m, trim)
                pos += _KEY.size + n + 8
            return
        n, seq = _KEY.unpack_from(body, 0)
        m = body[_KEY.size : _KEY.size + n].decode()
        if kind == FRAME:
            self._next_seq[m] = max(self._next_seq.get(m, 1), seq + 1)
            if seq > self._trimmed_to.get(m, 0):
                self._frames.setdefault(m, deque()).append((self._order, seq, seg, body[_KEY.size + n :]))
                self._order += 1
                self._live[seg] += 1
                self._depth += 1
        elif kind == TRIM:
            self._next_seq[m] = max(self._next_seq.get(m, 1), seq + 1)
            self._trim_quiet(m, seq)

    def _trim_quiet(self, m: str, upto: int) -> None:
        frames = self._frames.get(m)
        while frames and frames[0][1] <= upto:
            _, _, seg, _ = frames.popleft()
            self._live[seg] -= 1
            self._depth -= 1
        self._trimmed_to[m] = max(self._trimmed_to.get(m, 0), upto)


def _key(modality: str, seq: int) -> bytes:
    name = modality.encode()
    return _KEY.pack(len(name), seq) + name
