"""The coordinator's state behind one interface: memory (embedded) or Redis (deployment).

Everything the coordinator must not lose goes through here, and a call returns
only once the state is as durable as the backend makes it; the ingest path
acknowledges frames only after store_frames returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from coordinator.validation import BatchColumns
from mmer.v1 import fusion_pb2, ingest_pb2, manifest_pb2


class StoreError(RuntimeError):
    """The backend failed; nothing the call was about may be assumed stored."""


class StoredBatch(NamedTuple):
    """What storing a batch did: per frame, whether it was new and whether this replica fuses it; and the
    high-water mark of every (device, modality) in the batch after it, for the Ack."""

    new: list[bool]
    acked: dict[tuple[str, str], int]
    mine: list[bool]


class Store(Protocol):
    """What the coordinator keeps: dedup marks, frames' effects, the fused stream."""

    async def store_frames(self, frames: Sequence[ingest_pb2.ScoreFrame], receive_ns: int = 0) -> list[bool]:
        """Record frames in order; True for each new frame, False for a duplicate (seq already stored).

        A shared store also queues each new frame (with its receive time) for the replica fusing its subject."""
        ...

    async def store_batch(self, cols: BatchColumns, receive_ns: int = 0) -> StoredBatch:
        """store_frames for a batch read into columns (the fields ingest read once), plus the marks for the
        Ack and which new frames this replica fuses (all of them,
        unless replicas share the store and another holds the subject's lease); one round trip."""
        ...

    async def acked_seq(self, device_id: str, modality: str, subject_id: str = "") -> int:
        """Highest seq stored for the device's modality (0 = none)."""
        ...

    async def acked_seqs(self, keys: Sequence[tuple[str, str, str]]) -> list[int]:
        """acked_seq of many (device, modality, subject) in one round trip."""
        ...

    async def append_fused(
        self, emotions: Sequence[fusion_pb2.FusedEmotion]
    ) -> list[fusion_pb2.FusedEmotion]:
        """Append to the fused stream in one round trip, each emotion unless its subject's window was already
        fused (a retry after a lost reply, a replica taking over): those appended, their positions set."""
        ...

    async def read_fused(
        self, after_position: str, subjects: Iterable[str] | None, limit: int
    ) -> list[fusion_pb2.FusedEmotion]:
        """Fused emotions after a position (exclusive), oldest first, optionally for some subjects only."""
        ...

    async def latest(self, subjects: Iterable[str] | None) -> list[fusion_pb2.FusedEmotion]:
        """The newest fused emotion of each subject."""
        ...

    async def put_model(self, manifest: manifest_pb2.ModelManifest, blobs: Mapping[str, bytes]) -> None:
        """Keep a verified bundle so any replica can serve it."""
        ...

    async def get_model(
        self, modality: str, version: int
    ) -> tuple[manifest_pb2.ModelManifest, dict[str, bytes]] | None:
        """A stored bundle, or None."""
        ...

    async def list_manifests(self, modality: str | None) -> list[manifest_pb2.ModelManifest]:
        """Manifests of the stored bundles, by modality then version."""
        ...

    async def put_rollout(self, modality: str, state: bytes) -> None:
        """Persist a modality's rollout state (stable/canary versions and stages), opaque to the store."""
        ...

    async def get_rollouts(self) -> dict[str, bytes]:
        """Every modality's persisted rollout state."""
        ...

    async def announce_rollout(self, modality: str, rollback: bool) -> None:
        """Tell the other replicas that a modality's rollout state changed (no-op for a private store)."""
        ...

    def rollout_changes(self, stop: asyncio.Event) -> AsyncIterator[tuple[str, bool]]:
        """(modality, rollback) for every change announced by any replica, until `stop` is set; after each
        (re)connection first every modality, as a change may have been missed meanwhile."""
        ...

    async def close(self) -> None:
        """Flush and release the backend."""
        ...


def position_key(position: str) -> tuple[int, int]:
    """Order of stream positions "<ms>-<n>" (Redis stream ids) or plain integers."""
    head, _, tail = position.partition("-")
    try:
        return int(head), int(tail or 0)
    except ValueError:
        raise ValueError(f"bad stream position {position!r}") from None
