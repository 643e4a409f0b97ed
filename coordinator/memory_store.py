"""The embedded store: everything in this process, nothing to install."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

from coordinator.store import StoredBatch, position_key
from coordinator.validation import BatchColumns, read_columns
from mmer.v1 import fusion_pb2, ingest_pb2, manifest_pb2


class MemoryStore:
    """In-process state; the fused stream keeps its newest `maxlen` emotions.

    The stream holds each emotion serialized, beside its position and subject: plain values the garbage
    collector does not track. Kept as messages, 100,000 emotions tripled the time of every full collection
    (31 against 10 ms), during which the coordinator answers nothing. A replay parses what it reads."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._hwm: dict[tuple[str, str], int] = {}
        self._fused: deque[tuple[tuple[int, int], str, bytes]] = deque(maxlen=maxlen)
        self._latest: dict[str, fusion_pb2.FusedEmotion] = {}
        self._fused_mark: dict[str, int] = {}  # last fused window end per subject
        self._next = 1
        self._models: dict[tuple[str, int], tuple[manifest_pb2.ModelManifest, dict[str, bytes]]] = {}
        self._rollouts: dict[str, bytes] = {}

    async def store_frames(self, frames: Sequence[ingest_pb2.ScoreFrame], receive_ns: int = 0) -> list[bool]:
        return (await self.store_batch(read_columns(frames, [receive_ns] * len(frames)), receive_ns))[0]

    async def store_batch(self, cols: BatchColumns, receive_ns: int = 0) -> StoredBatch:
        hwm = self._hwm
        new = []
        acked: dict[tuple[str, str], int] = {}
        for key, seq in zip(zip(cols.device_ids, cols.modalities, strict=True), cols.seqs, strict=True):
            mark = hwm.get(key, 0)
            if seq > mark:
                mark = hwm[key] = seq
                new.append(True)
            else:
                new.append(False)
            acked[key] = mark
        return StoredBatch(new, acked, new)

    async def acked_seq(self, device_id: str, modality: str, subject_id: str = "") -> int:
        return self._hwm.get((device_id, modality), 0)

    async def acked_seqs(self, keys: Sequence[tuple[str, str, str]]) -> list[int]:
        return [self._hwm.get((d, m), 0) for d, m, _ in keys]

    async def append_fused(
        self, emotions: Sequence[fusion_pb2.FusedEmotion]
    ) -> list[fusion_pb2.FusedEmotion]:
        appended = []
        for emotion in emotions:
            if emotion.window_end_ns <= self._fused_mark.get(emotion.subject_id, 0):
                continue
            self._fused_mark[emotion.subject_id] = emotion.window_end_ns
            emotion.position = str(self._next)
            self._next += 1
            stored = fusion_pb2.FusedEmotion()
            stored.CopyFrom(emotion)
            self._fused.append(
                (position_key(emotion.position), emotion.subject_id, stored.SerializeToString())
            )
            self._latest[emotion.subject_id] = stored
            appended.append(emotion)
        return appended

    async def read_fused(
        self, after_position: str, subjects: Iterable[str] | None, limit: int
    ) -> list[fusion_pb2.FusedEmotion]:
        after = position_key(after_position or "0")
        wanted = set(subjects) if subjects else None
        out = []
        for key, subject, data in self._fused:
            if key > after and (wanted is None or subject in wanted):
                out.append(fusion_pb2.FusedEmotion.FromString(data))
                if len(out) >= limit:
                    break
        return out

    async def latest(self, subjects: Iterable[str] | None) -> list[fusion_pb2.FusedEmotion]:
        wanted = set(subjects) if subjects else None
        return [e for s, e in sorted(self._latest.items()) if wanted is None or s in wanted]

    async def put_model(self, manifest: manifest_pb2.ModelManifest, blobs: Mapping[str, bytes]) -> None:
        self._models[(manifest.modality, manifest.version)] = (manifest, dict(blobs))

    async def get_model(
        self, modality: str, version: int
    ) -> tuple[manifest_pb2.ModelManifest, dict[str, bytes]] | None:
        return self._models.get((modality, version))

    async def list_manifests(self, modality: str | None) -> list[manifest_pb2.ModelManifest]:
        return [m for (mod, _), (m, _) in sorted(self._models.items()) if modality in (None, "", mod)]

    async def put_rollout(self, modality: str, state: bytes) -> None:
        self._rollouts[modality] = state

    async def get_rollouts(self) -> dict[str, bytes]:
        return dict(self._rollouts)

    async def announce_rollout(self, modality: str, rollback: bool) -> None:
        return None  # one process: its registry already told its watchers

    async def rollout_changes(self, stop: asyncio.Event) -> AsyncIterator[tuple[str, bool]]:
        await stop.wait()
        return
        yield  # an async generator that yields nothing

    async def close(self) -> None:
        return None
