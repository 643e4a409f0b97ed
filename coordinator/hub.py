"""Live fan-out of fused emotions to subscribers, each with a bounded buffer.

Publishing never waits: a subscriber whose buffer is full is marked overflowed
and cut off by its own stream, so one slow reader cannot stall ingest or the
other readers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from mmer.v1 import fusion_pb2


class Subscription:
    """One subscriber's queue and subject filter."""

    def __init__(self, subjects: Iterable[str] | None, buffer: int) -> None:
        self.subjects = set(subjects) if subjects else None
        self.queue: asyncio.Queue[fusion_pb2.FusedEmotion] = asyncio.Queue(maxsize=buffer)
        self.overflowed = False

    def wants(self, emotion: fusion_pb2.FusedEmotion) -> bool:
        return self.subjects is None or emotion.subject_id in self.subjects


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

    def publish(self, emotion: fusion_pb2.FusedEmotion) -> None:
        """Hand the emotion to every interested subscriber without waiting for any."""
        for sub in list(self.subscriptions):
            if sub.overflowed or not sub.wants(emotion):
                continue
            try:
                sub.queue.put_nowait(emotion)
            except asyncio.QueueFull:
                sub.overflowed = True
                self.cut_off += 1
                self.subscriptions.discard(sub)
