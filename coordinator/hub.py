"""Live fan-out of fused emotions to subscribers, each with a bounded buffer.

Emotions are published together, as appended to the fused stream, each serialized once: a subscriber of
all subjects gets the same bytes as every other (one FusedBatch per publish, built once), a subscriber of
some subjects the entries of its subjects. Publishing never waits: a subscriber whose buffer is full is
marked overflowed and cut off by its own stream, so one slow reader cannot stall ingest or the other
readers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from functools import cached_property

from coordinator.encoded import repeated_field_1, with_position
from coordinator.store import position_key
from mmer.v1 import fusion_pb2


class Published:
    """Fused emotions in stream order: each one's position, subject and serialized message (position
    included)."""

    def __init__(self, positions: Sequence[str], subjects: Sequence[str], data: Sequence[bytes]) -> None:
        self.positions = list(positions)
        self.subjects = list(subjects)
        self.data = list(data)

    @classmethod
    def of(cls, emotions: Sequence[fusion_pb2.FusedEmotion]) -> Published:
        """Emotions whose positions are set, serialized here."""
        return cls(
            [e.position for e in emotions],
            [e.subject_id for e in emotions],
            [e.SerializeToString() for e in emotions],
        )

    @classmethod
    def appended(cls, positions: Sequence[str], subjects: Sequence[str], data: Sequence[bytes]) -> Published:
        """Emotions serialized before they had a position, and the positions the stream gave them."""
        return cls(positions, subjects, [with_position(d, p) for d, p in zip(data, positions, strict=True)])

    def __len__(self) -> int:
        return len(self.data)

    @cached_property
    def keys(self) -> list[tuple[int, int]]:
        """Each emotion's position_key, in order."""
        return [position_key(p) for p in self.positions]

    @cached_property
    def batch(self) -> bytes:
        """The emotions as one serialized FusedBatch, built once for every subscriber that sends it."""
        return repeated_field_1(self.data)

    def rows(self, rows: Iterable[int]) -> Published:
        """A Published of some of the emotions."""
        rows = list(rows)
        return Published(
            [self.positions[i] for i in rows], [self.subjects[i] for i in rows], [self.data[i] for i in rows]
        )

    def after(self, key: tuple[int, int]) -> Published:
        """The emotions after stream position `key` (all of them, usually)."""
        keys = self.keys
        if not keys or keys[0] > key:
            return self
        return self.rows(i for i, k in enumerate(keys) if k > key)

    def parts(self, most: int) -> list[Published]:
        """The emotions in pieces of at most `most`."""
        if len(self) <= most:
            return [self]
        return [self.rows(range(i, min(i + most, len(self)))) for i in range(0, len(self), most)]

    def emotions(self) -> list[fusion_pb2.FusedEmotion]:
        """The emotions parsed (for readers that need the fields)."""
        return [fusion_pb2.FusedEmotion.FromString(d) for d in self.data]


class Subscription:
    """One subscriber's queue of published emotions and its subject filter; `buffer` bounds the emotions
    it may hold."""

    def __init__(self, subjects: Iterable[str] | None, buffer: int) -> None:
        self.subjects = set(subjects) if subjects else None
        self.buffer = buffer
        self.queue: asyncio.Queue[Published] = asyncio.Queue()
        self.held = 0  # emotions queued
        self.overflowed = False

    async def get(self) -> Published:
        """The next published emotions for this subscriber (waits for some)."""
        published = await self.queue.get()
        self.held -= len(published)
        return published

    def get_nowait(self) -> Published:
        published = self.queue.get_nowait()
        self.held -= len(published)
        return published


class Hub:
    """All live subscriptions of this process."""

    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()
        self.cut_off = 0

    def subscribe(self, subjects: Iterable[str] | None, buffer: int) -> Subscription:
        sub = Subscription(subjects, buffer)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)

    def publish(self, published: Published) -> None:
        """Hand the emotions to every interested subscriber without waiting for any."""
        if not len(published):
            return
        for sub in list(self.subscriptions):
            if sub.overflowed:
                continue
            mine = published
            if sub.subjects is not None:
                wanted = sub.subjects
                rows = [i for i, s in enumerate(published.subjects) if s in wanted]
                if not rows:
                    continue
                mine = published if len(rows) == len(published) else published.rows(rows)
            if sub.held + len(mine) > sub.buffer:
                sub.overflowed = True
                self.cut_off += 1
                self.subscriptions.discard(sub)
                sub.queue.put_nowait(mine)  # wakes its stream, which sees overflowed and ends
                continue
            sub.held += len(mine)
            sub.queue.put_nowait(mine)
