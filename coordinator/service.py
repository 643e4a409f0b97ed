"""The coordinator's gRPC services: Ingest, Fusion, Clock and Admin over one shared state."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from opentelemetry import metrics

from coordinator.auth import Principal, principal_of
from coordinator.device_metrics import observe_devices
from coordinator.fusion_engine import TICK_S, FusionEngine
from coordinator.hop_recorder import HopRecorder
from coordinator.hub import Hub
from coordinator.latency import LatencyBook
from coordinator.registry import Registry, RolloutRule
from coordinator.store import Store, StoreError, position_key
from coordinator.tracing import WindowTraces
from coordinator.validation import InvalidFrame, validate_frame
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
from mmer_core import bundle
from mmer_core.config import CoordinatorConfig
from mmer_core.fusion import accuracy_weight
from mmer_core.modalities import MODALITIES
from mmer_core.taxonomy import QUADRANTS
from mmer_core.wire import INVALID_FRAME_KEY, format_invalid_frame

log = logging.getLogger("mmer.coordinator")
MAX_FRAMES_PER_BATCH = 1024


@dataclass
class DeviceInfo:
    """What the coordinator last heard from a device."""

    subject_id: str = ""
    last_seen_ns: int = 0
    model_versions: dict[str, int] = field(default_factory=dict)
    status: ingest_pb2.EdgeStatus | None = None


class Coordinator:
    """State shared by the services of one coordinator process."""

    def __init__(
        self, config: CoordinatorConfig, store: Store, trainer_key: bundle.Ed25519PublicKey | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.tokens: dict[str, Principal] | None = None  # None: auth off
        self.sharing = None  # a coordinator.sharing.SharedFusion when replicas share one Redis
        self.registry = Registry(store, trainer_key, RolloutRule(fraction=config.rollout_fraction))
        self.hub = Hub()
        self.latency = LatencyBook()
        self.hops = HopRecorder(self.latency, config.metrics_sample_every)
        self.traces = WindowTraces()
        meter = metrics.get_meter("mmer.coordinator")
        self.counters: Counter[str] = Counter()
        self.devices: dict[str, DeviceInfo] = {}
        observe_devices(meter, self.devices)
        self.labels = {m: QUADRANTS.labels for m in MODALITIES}
        self.model_weights: dict[tuple[str, int], float] = {}  # shared with every engine; see refresh_models
        self.engine = self.new_engine()
        self.started = time.monotonic()
        self._last_seq: dict[tuple[str, str], int] = {}
        self._ticker: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    def new_engine(self) -> FusionEngine:
        c = self.config
        return FusionEngine(
            c.fusion_window_s, c.staleness_s, c.strategy, c.smoothing_alpha, c.weights, c.fusion_grace_s,
            self.model_weights,
        )  # fmt: skip

    async def _tick_loop(self) -> None:
        """Fuse windows whose grace ran out; runs while any window waits, restarted by the next frame."""
        while (deadline := self.engine.next_deadline()) is not None:
            await asyncio.sleep(min(max(deadline - time.time_ns(), 0) / 1e9, TICK_S))
            async with self._lock:
                await self.publish_many(self.engine.tick())

    async def ingest(self, batch: ingest_pb2.ScoreBatch, receive_ns: int) -> ingest_pb2.Ack:
        """Validate, store, fuse and publish one batch; the Ack reflects only what the store accepted.

        Per-frame work is kept to the checks and the bookkeeping that must see every frame; the store
        gets the batch in one round trip, and counters, latencies and metrics are taken per batch.
        """
        frames = batch.frames
        if not 1 <= len(frames) <= MAX_FRAMES_PER_BATCH:
            raise InvalidFrame(f"batch {batch.batch_id}: frames must hold 1..{MAX_FRAMES_PER_BATCH} frames")
        tolerance = int(self.config.clock_tolerance_ms * 1e6)
        for frame in frames:
            validate_frame(frame, self.labels, receive_ns, tolerance)
        new_flags, acked = await self.store.store_batch(frames, receive_ns)
        stored = [f for f, new in zip(frames, new_flags, strict=True) if new]
        ack = ingest_pb2.Ack(batch_id=batch.batch_id, receive_ns=receive_ns)
        ack.duplicates = len(frames) - len(stored)
        self.counters["frames_received"] += len(frames)
        self.counters["frames_stored"] += len(stored)
        if ack.duplicates:
            self.counters["duplicates"] += ack.duplicates
        last_seq = self._last_seq
        for frame in stored:
            key = (frame.device_id, frame.modality)
            if frame.seq > last_seq.get(key, frame.seq - 1) + 1:
                ack.gaps += 1
            last_seq[key] = frame.seq
        if ack.gaps:
            self.counters["gaps"] += ack.gaps
        if stored:
            self._note_devices(stored, receive_ns)
            self.hops.frames(stored, receive_ns)
            for frame in stored:
                if frame.traceparent:  # sampled windows only carry one
                    self.traces.ingested(frame, receive_ns)
            if self.registry.trials:
                for frame in stored:
                    await self.registry.observe(frame)
            if self.sharing is None:
                async with self._lock:  # one fuser: windows leave the engine and the store in order
                    await self.publish_many(
                        [e for frame in stored for e in self.engine.add(frame, receive_ns)]
                    )
                if self._ticker is None or self._ticker.done():
                    self._ticker = asyncio.create_task(self._tick_loop())
        if batch.HasField("status") and batch.status.device_id in self.devices:
            self.devices[batch.status.device_id].status = batch.status
        ack.acks.extend(
            ingest_pb2.ModalityAck(device_id=device, modality=modality, acked_seq=seq)
            for (device, modality), seq in sorted(acked.items())
        )
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

    async def publish_many(self, emotions: list[fusion_pb2.FusedEmotion]) -> None:
        """Stamp the publish time, append to the stream, fan out, and record the coordinator's hops."""
        if not emotions:
            return
        now = time.time_ns()
        fused_at = {}
        for emotion in emotions:
            fused_ns = fused_at[id(emotion)] = emotion.published_ns  # the engine stamps its fusion time here
            emotion.published_ns = now
            lat = emotion.latency
            lat.publish_ms = max(now - fused_ns, 0) / 1e6
            lat.total_ms = (
                lat.queue_ms
                + lat.inference_ms
                + lat.spool_ms
                + lat.network_ms
                + lat.wait_ms
                + lat.fuse_ms
                + lat.publish_ms
            )
        if self.sharing is None:
            for emotion in emotions:
                emotion.position = await self.store.append_fused(emotion)
                self.hub.publish(emotion)
            published = emotions
        else:  # at most once per subject window across replicas; hubs are fed from the Redis stream
            published = []
            for emotion, position in zip(emotions, await self.sharing.append_many(emotions), strict=True):
                if position is None:
                    self.counters["fused_already"] += 1
                else:
                    emotion.position = position
                    published.append(emotion)
        self.counters["fused_emotions"] += len(published)
        for emotion in published:
            lat = emotion.latency
            self.traces.published(emotion, fused_at[id(emotion)])
            self.hops.emotion(lat.wait_ms, lat.fuse_ms, lat.publish_ms, lat.total_ms)

    def _note_devices(self, frames: list[ingest_pb2.ScoreFrame], receive_ns: int) -> None:
        devices = self.devices
        for frame in frames:
            info = devices.get(frame.device_id)
            if info is None:
                info = devices[frame.device_id] = DeviceInfo()
            info.subject_id = frame.subject_id
            info.last_seen_ns = receive_ns
            info.model_versions[frame.modality] = frame.model_version

    def stats(self, reset: bool = False) -> admin_pb2.Stats:
        """Everything Admin.GetStats reports."""
        self.hops.flush()
        out = admin_pb2.Stats(
            replica=f"{os.uname().nodename}:{os.getpid()}", uptime_s=time.monotonic() - self.started
        )
        for (hop, modality), hist in sorted(self.latency.hists.items()):
            out.latencies.append(admin_pb2.HopLatency(hop=hop, modality=modality, summary=hist.summary()))
        out.counters.update({**self.counters, "subscribers_cut": self.hub.cut_off})
        engines = [self.engine, *(self.sharing.engines.values() if self.sharing is not None else ())]
        for how in ("complete", "grace"):  # how fusion windows closed: all inputs in, or grace ran out
            out.counters[f"windows_{how}"] = sum(e.closed[how] for e in engines)
        out.gauges.update(
            {"connected_devices": len(self.devices), "subscribers": len(self.hub.subscriptions)}
        )
        for device_id, info in sorted(self.devices.items()):
            state = admin_pb2.DeviceState(
                device_id=device_id, subject_id=info.subject_id, last_seen_ns=info.last_seen_ns,
                model_versions=info.model_versions,
            )  # fmt: skip
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

    def __init__(self, app: Coordinator) -> None:
        self.app = app

    async def StreamScores(
        self, request_iterator: AsyncIterator[ingest_pb2.ScoreBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ingest_pb2.Ack]:
        principal = principal_of(context, self.app.tokens)
        async for batch in request_iterator:
            receive_ns = time.time_ns()
            if principal is not None and principal.role == "device":
                foreign = {f.device_id for f in batch.frames} - {principal.name}
                if foreign:
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"device_id: token of {principal.name!r} cannot send frames of {sorted(foreign)}",
                    )
            try:
                yield await self.app.ingest(batch, receive_ns)
            except InvalidFrame as exc:
                self.app.counters["invalid"] += 1
                # the edge sets the named frame aside instead of resending it forever
                value = None if exc.frame is None else format_invalid_frame(*exc.frame)
                named = () if value is None else ((INVALID_FRAME_KEY, value),)
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc), trailing_metadata=named)
            except StoreError as exc:
                log.error("store failed, batch %d not acked: %s", batch.batch_id, exc)
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}")


class FusionService(fusion_pb2_grpc.FusionServicer):
    """The fused-emotion stream, resumable from a position."""

    def __init__(self, app: Coordinator) -> None:
        self.app = app

    async def Subscribe(
        self, request: fusion_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[fusion_pb2.FusedEmotion]:
        subjects = list(request.subject_ids) or None
        await _check_subjects(self.app, context, request.subject_ids)
        sub = self.app.hub.subscribe(subjects, self.app.config.subscriber_buffer)
        try:
            last = (0, 0)
            if request.after_position:
                try:
                    after = request.after_position
                    position_key(after)
                except ValueError as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"after_position: {exc}")
                while True:
                    try:
                        page = await self.app.store.read_fused(after, subjects, 1000)
                    except StoreError as exc:  # the client resumes from its last position once we can read
                        await context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}")
                    for emotion in page:
                        yield emotion
                    if len(page) < 1000:
                        break
                    after = page[-1].position
                if request.after_position and after:
                    last = position_key(after) if not page else position_key(page[-1].position)
            while True:
                emotion = await sub.queue.get()
                if sub.overflowed:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"subscriber fell {self.app.config.subscriber_buffer} emotions behind; resume from "
                        f"position {emotion.position} or later",
                    )
                if position_key(emotion.position) <= last:
                    continue
                last = position_key(emotion.position)
                yield emotion
        finally:
            self.app.hub.unsubscribe(sub)

    async def Latest(
        self, request: fusion_pb2.LatestRequest, context: grpc.aio.ServicerContext
    ) -> fusion_pb2.LatestResponse:
        await _check_subjects(self.app, context, request.subject_ids)
        try:
            emotions = await self.app.store.latest(list(request.subject_ids) or None)
        except StoreError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}")
        return fusion_pb2.LatestResponse(emotions=emotions)


async def _check_subjects(app: Coordinator, context: grpc.aio.ServicerContext, subjects) -> None:
    """PERMISSION_DENIED unless the caller's token covers every subject asked for (all, when none named)."""
    principal = principal_of(context, app.tokens)
    if principal is not None and not principal.may_see(subjects):
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"subject_ids: {principal.name!r} may see only {sorted(principal.subjects or ())}, "
            f"asked for {sorted(subjects) or 'all subjects'}",
        )


class ClockService(clock_pb2_grpc.ClockServicer):
    """NTP-style exchange: the coordinator's receive and send times."""

    def __init__(self, app: Coordinator) -> None:
        self.app = app

    async def Sync(
        self, request: clock_pb2.SyncRequest, context: grpc.aio.ServicerContext
    ) -> clock_pb2.SyncResponse:
        t1 = time.time_ns()
        return clock_pb2.SyncResponse(
            t0_device_ns=request.t0_device_ns, t1_ns=t1, t2_ns=time.time_ns(),
            tolerance_ms=self.app.config.clock_tolerance_ms,
        )  # fmt: skip


class AdminService(admin_pb2_grpc.AdminServicer):
    """Latency percentiles, counters and device states."""

    def __init__(self, app: Coordinator) -> None:
        self.app = app

    async def GetStats(
        self, request: admin_pb2.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.Stats:
        return self.app.stats(reset=request.reset)
