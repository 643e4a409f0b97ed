"""The coordinator's gRPC services: Ingest, Fusion, Clock and Admin over one shared state."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from opentelemetry import metrics

from coordinator.auth import Principal, principal_of
from coordinator.device_metrics import observe_devices
from coordinator.fuser import Fuser
from coordinator.hub import Hub, Published
from coordinator.measures import Measures
from coordinator.registry import Registry
from coordinator.store import Store, position_key
from coordinator.validation import BatchColumns, InvalidFrame, validate_batch
from mmer.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    clock_pb2,
    clock_pb2_grpc,
    fusion_pb2,
    fusion_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
)
from mmer_core.config import CoordinatorConfig
from mmer_core.fusion import accuracy_weight
from mmer_core.modalities import MODALITIES
from mmer_core.taxonomy import QUADRANTS

log = logging.getLogger("mmer.coordinator")
MAX_FRAMES_PER_BATCH = 1024
DEFAULT_MAX_BATCH = 500  # fused emotions per SubscribeBatches message unless the client asks for fewer
REPLAY_PAGE = 1000  # stored emotions read per store call when a subscriber resumes


@dataclass
class DeviceInfo:
    """What the coordinator last heard from a device."""

    subject_id: str = ""
    last_seen_ns: int = 0
    model_versions: dict[str, int] = field(default_factory=dict)
    status: ingest_pb2.EdgeStatus | None = None


class Coordinator:
    """The state the coordinator's services share, built from its config and the parts it uses
    (coordinator.assembly.open_coordinator assembles them)."""

    def __init__(
        self,
        config: CoordinatorConfig,
        store: Store,
        registry: Registry,
        fuser: Fuser,
        hub: Hub,
        measures: Measures,
        model_weights: dict[tuple[str, int], float],
    ) -> None:
        """`model_weights` is the dict the fusion engines read: refresh_models updates it in place."""
        self.config = config
        self.store = store
        self.registry = registry
        self.fuser = fuser
        self.hub = hub
        self.measures = measures
        self.counters = measures.counters
        self.latency = measures.latency
        self.hops = measures.hops
        self.model_weights = model_weights
        self.devices: dict[str, DeviceInfo] = {}
        observe_devices(metrics.get_meter("mmer.coordinator"), self.devices)
        self.labels = {m: QUADRANTS.labels for m in MODALITIES}
        self.started = time.monotonic()
        self._last_seq: dict[tuple[str, str], int] = {}
        self._versions: dict[tuple[str, str], int] = {}  # model version last seen per (device, modality)
        self._forget_at = 0  # when ingest next looks for devices gone quiet (ns)

    async def close(self) -> None:
        """Publish what is fused, stop fusing, and release the store."""
        await self.fuser.stop()
        await self.store.close()

    async def ingest(self, batch: ingest_pb2.ScoreBatch, receive_ns: int) -> ingest_pb2.Ack:
        """Validate, store, fuse and publish one batch; the Ack reflects only what the store accepted.

        Per-frame work is kept to the checks and the bookkeeping that must see every frame; the store
        gets the batch in one round trip, and counters, latencies and metrics are taken per batch.
        """
        frames = batch.frames
        try:
            if not 1 <= len(frames) <= MAX_FRAMES_PER_BATCH:
                raise InvalidFrame(
                    f"batch {batch.batch_id}: frames must hold 1..{MAX_FRAMES_PER_BATCH} frames"
                )
            tolerance = int(self.config.clock_tolerance_ms * 1e6)
            cols = validate_batch(frames, self.labels, receive_ns, tolerance)
        except InvalidFrame:
            self.counters["invalid"] += 1
            raise
        new_flags, acked, mine = await self.store.store_batch(cols, receive_ns)
        n = len(new_flags)
        kept = range(n) if all(new_flags) else [i for i, new in enumerate(new_flags) if new]
        ack = ingest_pb2.Ack(batch_id=batch.batch_id, receive_ns=receive_ns)
        ack.duplicates = n - len(kept)
        counters = self.counters
        counters["frames_received"] += n
        counters["frames_stored"] += len(kept)
        if ack.duplicates:
            counters["duplicates"] += ack.duplicates
        if kept:
            ack.gaps = self._note_frames(cols, kept, receive_ns)
            if ack.gaps:
                counters["gaps"] += ack.gaps
            if len(kept) == n:
                self.hops.frame_times(cols.modalities, cols.times)
            else:
                self.hops.frame_times([cols.modalities[i] for i in kept], [cols.times[i] for i in kept])
            self.fuser.add(cols, range(n) if all(mine) else [i for i, fuse in enumerate(mine) if fuse])
            if self.registry.trials:
                for i in kept:
                    await self.registry.observe(cols.frames[i])
        if receive_ns >= self._forget_at:
            self._forget_quiet_devices(receive_ns)
        if batch.HasField("status") and batch.status.device_id in self.devices:
            self.devices[batch.status.device_id].status = batch.status
        add = ack.acks.add
        for (device, modality), seq in sorted(acked.items()):
            add(device_id=device, modality=modality, acked_seq=seq)
        return ack

    def refresh_models(self) -> None:
        """Follow the registry: validate frames against the label set of each modality's stable model, and
        weigh each model's scores in fusion by its validation accuracy (every version: canaries too)."""
        for modality, rollout in self.registry.rollouts.items():
            manifest = self.registry.manifests.get((modality, rollout.stable))
            if manifest is not None:
                self.labels[modality] = tuple(manifest.taxonomy.labels)
        weights = {
            key: accuracy_weight(m.metrics.validation_accuracy, len(m.taxonomy.labels))
            for key, m in self.registry.manifests.items()
            if 0 < m.metrics.validation_accuracy <= 1 and len(m.taxonomy.labels) >= 2  # 0: not reported
        }
        self.model_weights.clear()
        self.model_weights.update(weights)

    def _forget_quiet_devices(self, now_ns: int) -> None:
        """Drop the devices that sent nothing for the idle time: a coordinator that runs for months meets many
        devices, and one gone quiet is neither connected nor serving; it starts afresh when back."""
        idle_ns = int(self.config.idle_s * 1e9)
        self._forget_at = now_ns + int(self.config.idle_check_s * 1e9)
        gone = {d for d, info in self.devices.items() if info.last_seen_ns < now_ns - idle_ns}
        if gone:
            for device in gone:
                del self.devices[device]
            for keys in (self._last_seq, self._versions):
                for key in [k for k in keys if k[0] in gone]:
                    del keys[key]
            self.counters["devices_forgotten"] += len(gone)

    def _note_frames(self, cols: BatchColumns, kept: Sequence[int], receive_ns: int) -> int:
        """Each device's last state and the model version it serves per modality, the ingest span of each
        sampled window; returns the seq gaps per (device, modality)."""
        devices, subjects, modalities, seqs, versions = (
            cols.device_ids,
            cols.subject_ids,
            cols.modalities,
            cols.seqs,
            cols.model_versions,
        )
        last_seq, served, known = self._last_seq, self._versions, self.devices
        gaps = 0
        for i in kept:
            device, seq, version = devices[i], seqs[i], versions[i]
            key = (device, modalities[i])
            last = last_seq.get(key)
            if last is not None and seq > last + 1:
                gaps += 1
            last_seq[key] = seq
            info = known.get(device)
            if info is None:
                info = known[device] = DeviceInfo()
            info.subject_id = subjects[i]
            info.last_seen_ns = receive_ns
            if served.get(key) != version:
                served[key] = version
                info.model_versions[key[1]] = version
        if cols.traced:  # sampled windows only carry a traceparent
            stored = set(kept)
            for i in cols.traced:
                if i in stored:
                    self.measures.traces.ingested(cols.frames[i], receive_ns)
        return gaps

    def stats(self, reset: bool = False) -> admin_pb2.Stats:
        """Everything Admin.GetStats reports."""
        self.hops.flush()
        out = admin_pb2.Stats(
            replica=f"{os.uname().nodename}:{os.getpid()}", uptime_s=time.monotonic() - self.started
        )
        for (hop, modality), hist in sorted(self.latency.hists.items()):
            out.latencies.append(admin_pb2.HopLatency(hop=hop, modality=modality, summary=hist.summary()))
        out.counters.update({**self.counters, "subscribers_cut": self.hub.cut_off})
        closed = self.fuser.closed()
        for how in ("complete", "grace"):  # how fusion windows closed: all inputs in, or grace ran out
            out.counters[f"windows_{how}"] = closed[how]
        out.gauges.update(
            {"connected_devices": len(self.devices), "subscribers": len(self.hub.subscriptions)}
        )
        for device_id, info in sorted(self.devices.items()):
            state = admin_pb2.DeviceState(
                device_id=device_id,
                subject_id=info.subject_id,
                last_seen_ns=info.last_seen_ns,
                model_versions=info.model_versions,
            )
            if info.status is not None:
                state.spool_depth = info.status.spool_depth
                state.queue_depth = info.status.queue_depth
                state.frames_dropped = info.status.frames_dropped
                state.model_versions.update(info.status.model_versions)
            out.devices.append(state)
        if reset:
            self.latency.reset()
            self.counters.clear()
        return out


class IngestService(ingest_pb2_grpc.IngestServicer):
    """Bidirectional score stream: batches in, Acks out."""

    def __init__(self, coordinator: Coordinator, tokens: Mapping[str, Principal] | None) -> None:
        self.coordinator = coordinator
        self.tokens = tokens

    async def StreamScores(
        self, request_iterator: AsyncIterator[ingest_pb2.ScoreBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ingest_pb2.Ack]:
        principal = principal_of(context, self.tokens)
        async for batch in request_iterator:
            receive_ns = time.time_ns()
            if principal is not None and principal.role == "device":
                foreign = {f.device_id for f in batch.frames} - {principal.name}
                if foreign:
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"device_id: token of {principal.name!r} cannot send frames of {sorted(foreign)}",
                    )
            yield await self.coordinator.ingest(batch, receive_ns)


class FusionService(fusion_pb2_grpc.FusionServicer):
    """The fused-emotion stream, resumable from a position."""

    def __init__(
        self, hub: Hub, store: Store, subscriber_buffer: int, tokens: Mapping[str, Principal] | None
    ) -> None:
        self.hub = hub
        self.store = store
        self.subscriber_buffer = subscriber_buffer
        self.tokens = tokens

    async def Subscribe(
        self, request: fusion_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """FusedEmotions, one per message (each serialized once, when published)."""
        async for published in self._stream(request, context, REPLAY_PAGE):
            for data in published.data:
                yield data

    async def SubscribeBatches(
        self, request: fusion_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """FusedBatches of what was ready at once: a subscriber of all subjects sends the bytes built once
        for every such subscriber."""
        most = min(request.max_batch or DEFAULT_MAX_BATCH, REPLAY_PAGE)  # bounds a message's size
        async for published in self._stream(request, context, most):
            yield published.batch

    async def _stream(
        self, request: fusion_pb2.SubscribeRequest, context: grpc.aio.ServicerContext, most: int
    ) -> AsyncIterator[Published]:
        """The subscription's emotions in order, at most `most` at a time: the stored ones after the
        request's position first, then live ones, each part what was published at once."""
        subjects = list(request.subject_ids) or None
        await _check_subjects(self.tokens, context, request.subject_ids)
        sub = self.hub.subscribe(subjects, self.subscriber_buffer)
        try:
            last = (0, 0)
            if request.after_position:
                try:
                    after = request.after_position
                    position_key(after)
                except ValueError as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"after_position: {exc}")
                while True:  # a StoreError: the client resumes from its last position once we can read
                    page = await self.store.read_fused(after, subjects, REPLAY_PAGE)
                    for part in Published.of(page).parts(most):
                        yield part
                    if len(page) < REPLAY_PAGE:
                        break
                    after = page[-1].position
                if request.after_position and after:
                    last = position_key(after) if not page else position_key(page[-1].position)
            while True:
                published = await sub.get()
                if sub.overflowed:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"subscriber fell {self.subscriber_buffer} emotions behind; resume from "
                        f"position {published.positions[0]} or later",
                    )
                fresh = published.after(last)
                if len(fresh):
                    last = fresh.keys[-1]
                    for part in fresh.parts(most):
                        yield part
        finally:
            self.hub.unsubscribe(sub)

    async def Latest(
        self, request: fusion_pb2.LatestRequest, context: grpc.aio.ServicerContext
    ) -> fusion_pb2.LatestResponse:
        await _check_subjects(self.tokens, context, request.subject_ids)
        return fusion_pb2.LatestResponse(emotions=await self.store.latest(list(request.subject_ids) or None))


async def _check_subjects(
    tokens: Mapping[str, Principal] | None, context: grpc.aio.ServicerContext, subjects
) -> None:
    """PERMISSION_DENIED unless the caller's token covers every subject asked for (all, when none named)."""
    principal = principal_of(context, tokens)
    if principal is not None and not principal.may_see(subjects):
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"subject_ids: {principal.name!r} may see only {sorted(principal.subjects or ())}, "
            f"asked for {sorted(subjects) or 'all subjects'}",
        )


class ClockService(clock_pb2_grpc.ClockServicer):
    """NTP-style exchange: the coordinator's receive and send times."""

    def __init__(self, tolerance_ms: float) -> None:
        self.tolerance_ms = tolerance_ms

    async def Sync(
        self, request: clock_pb2.SyncRequest, context: grpc.aio.ServicerContext
    ) -> clock_pb2.SyncResponse:
        t1 = time.time_ns()
        return clock_pb2.SyncResponse(
            t0_device_ns=request.t0_device_ns, t1_ns=t1, t2_ns=time.time_ns(), tolerance_ms=self.tolerance_ms
        )


class AdminService(admin_pb2_grpc.AdminServicer):
    """Latency percentiles, counters and device states."""

    def __init__(self, stats: Callable[[bool], admin_pb2.Stats]) -> None:
        self.stats = stats

    async def GetStats(
        self, request: admin_pb2.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.Stats:
        return self.stats(request.reset)
