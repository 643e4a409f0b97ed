"""The coordinator's fused-emotion stream as an async iterator that survives restarts and network loss.

Every emotion carries its stream position; the iterator keeps the position of the last one it yielded and,
after a lost connection, asks the coordinator to resume right after it (`SubscribeRequest.after_position`),
so a reader sees each emotion once and none is skipped while the store still holds them. Starting "from now"
first pins the current end of the stream (the newest position `Fusion.Latest` knows), so even the emotions
published before the first one arrives survive a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from mmer.v1 import fusion_pb2, fusion_pb2_grpc

log = logging.getLogger("mmer.client")

# Worth another try: the coordinator is down or restarting, the network failed, or this reader fell behind.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
FROM_NOW = ""
FROM_OLDEST = "0"


class SubscribeError(Exception):
    """The coordinator refused the subscription for a reason retrying cannot fix (token, subjects, position)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Contribution:
    """One modality's part in a fused emotion."""

    modality: str
    weight: float  # normalised: the weights of one emotion sum to 1
    model_version: int


@dataclass(frozen=True)
class FusedEmotion:
    """One subject's fused emotion over one fusion window."""

    subject: str
    window_start_ns: int  # ns since the epoch, coordinator clock
    window_end_ns: int
    label: str
    probabilities: dict[str, float]  # label -> probability, summing to 1
    modalities: tuple[Contribution, ...]
    position: str  # pass as `start` to resume after this emotion
    message: fusion_pb2.FusedEmotion = field(repr=False, compare=False)  # the wire message, every field

    @classmethod
    def from_message(cls, m: fusion_pb2.FusedEmotion) -> FusedEmotion:
        return cls(
            subject=m.subject_id,
            window_start_ns=m.window_start_ns,
            window_end_ns=m.window_end_ns,
            label=m.label,
            probabilities=dict(zip(m.taxonomy.labels, m.probs, strict=True)),
            modalities=tuple(Contribution(c.modality, c.weight, c.model_version) for c in m.contributions),
            position=m.position,
            message=m,
        )

    @property
    def confidence(self) -> float:
        """The probability of the winning label."""
        return self.probabilities.get(self.label, 0.0)

    def to_json(self) -> dict:
        """A JSON object of plain values (probabilities rounded to 6 decimals: they travel as float32)."""
        return {
            "subject": self.subject,
            "window_start_ns": self.window_start_ns,
            "window_end_ns": self.window_end_ns,
            "label": self.label,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "modalities": [
                {"modality": c.modality, "weight": round(c.weight, 6), "model_version": c.model_version}
                for c in self.modalities
            ],
            "position": self.position,
        }


@dataclass
class Backoff:
    """Exponential backoff with full jitter: before retry n, wait uniformly in [0, min(cap, base * 2**n)].

    Random waits keep many readers of one restarted coordinator from reconnecting in lockstep; the cap
    bounds how long a reader stays away once the coordinator is back.
    """

    base_s: float = 0.25
    cap_s: float = 15.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * 2.0 ** min(attempt, 62)))


class FusedStream:
    """Fused emotions from a coordinator, resumed after every reconnect without a gap or a repeat.

    `start`: FROM_NOW ("", the default) for emotions published from now on, FROM_OLDEST ("0") for all the
    coordinator still holds, or a position an earlier reader got, to continue after it. A subscriber token
    scoped to some subjects must name them in `subjects`. Emotions come over Fusion.SubscribeBatches (many
    per message) from coordinators that have it, else over Fusion.Subscribe.
    """

    def __init__(
        self,
        target: str,
        token: str = "",
        *,
        subjects: Sequence[str] = (),
        start: str = FROM_NOW,
        tls_ca: Path | bytes | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.target = target
        self.subjects = list(subjects)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.ca = tls_ca.read_bytes() if isinstance(tls_ca, Path) else tls_ca
        self.backoff = backoff or Backoff()
        self._after: str | None = start or None  # None: pin the end of the stream first
        self.position = start if start not in (FROM_NOW, FROM_OLDEST) else ""
        self.batched = True  # Fusion.SubscribeBatches until the coordinator says it has none

    def _channel(self) -> grpc.aio.Channel:
        if self.ca is None:
            return grpc.aio.insecure_channel(self.target)
        return grpc.aio.secure_channel(self.target, grpc.ssl_channel_credentials(root_certificates=self.ca))

    async def _end_of_stream(self, stub: fusion_pb2_grpc.FusionStub) -> str:
        """The newest position of the subjects asked for ("0" when the coordinator holds none yet)."""
        latest = await stub.Latest(
            fusion_pb2.LatestRequest(subject_ids=self.subjects), metadata=self.metadata
        )
        positions = [e.position for e in latest.emotions if e.position]
        return max(positions, key=_order) if positions else FROM_OLDEST

    def __aiter__(self) -> AsyncIterator[FusedEmotion]:
        return self._emotions()

    async def _emotions(self) -> AsyncIterator[FusedEmotion]:
        async for messages in self._messages():
            for message in messages:
                self._after = self.position = message.position
                yield FusedEmotion.from_message(message)

    async def batches(self) -> AsyncIterator[list[FusedEmotion]]:
        """The same emotions as iterating the stream, in the lists the coordinator sent together: the way
        for a reader of many subjects to keep up."""
        async for messages in self._messages():
            self._after = self.position = messages[-1].position
            yield [FusedEmotion.from_message(m) for m in messages]

    async def _messages(self) -> AsyncIterator[list[fusion_pb2.FusedEmotion]]:
        """Wire messages in lists, resumed after `self._after` (which the callers advance as they hand
        emotions out). Fusion.SubscribeBatches when the coordinator has it, else Fusion.Subscribe: a
        coordinator that answers UNIMPLEMENTED is asked with Subscribe from then on, at once."""
        attempt = 0
        while True:
            try:
                async with self._channel() as channel:
                    stub = fusion_pb2_grpc.FusionStub(channel)
                    if self._after is None:
                        self._after = await self._end_of_stream(stub)
                    request = fusion_pb2.SubscribeRequest(
                        subject_ids=self.subjects, after_position=self._after
                    )
                    if self.batched:
                        async for batch in stub.SubscribeBatches(request, metadata=self.metadata):
                            attempt = 0
                            if batch.emotions:
                                yield list(batch.emotions)
                    else:
                        async for message in stub.Subscribe(request, metadata=self.metadata):
                            attempt = 0
                            yield [message]
                reason = "the coordinator ended the stream"
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.UNIMPLEMENTED and self.batched:
                    log.info("the coordinator has no SubscribeBatches; subscribing one emotion at a time")
                    self.batched = False
                    continue
                if err.code() not in RETRYABLE:
                    raise SubscribeError(err.code(), err.details() or "") from None
                reason = f"{err.code().name}: {err.details()}"
            delay = self.backoff.delay(attempt)
            attempt += 1
            log.warning("%s; resuming after position %r in %.1f s", reason, self._after, delay)
            await asyncio.sleep(delay)


def _order(position: str) -> tuple[int, int]:
    """Positions are "<ms>-<n>" (Redis stream ids) or plain integers; this orders both."""
    head, _, tail = position.partition("-")
    return int(head), int(tail or 0)
