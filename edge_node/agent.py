"""The edge agent: source -> windows -> bounded queue -> preprocess + ORT -> spool -> streamer.

Three lanes so that none blocks another: a reader thread pulls the source
(it never waits for inference: a full queue drops its oldest window, counted),
an inference thread scores windows and appends frames to the spool, and an
asyncio loop runs the gRPC stream, clock sync, model watch and health.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_node import telemetry
from edge_node.clock import ClockEstimate
from edge_node.inference import ModelRunner
from edge_node.models import ModelSlot, NoModelError, install_update
from edge_node.sample_clock import SampleClock
from edge_node.spool import Spool
from edge_node.streamer import Streamer, auth_metadata
from edge_node.wearer_baselines import Calibrating, WearerBaselines
from mmer.v1 import ingest_pb2, registry_pb2, registry_pb2_grpc
from mmer_core.bundle import BundleError
from mmer_core.modalities import get_spec
from mmer_core.preprocess import check_model_input, preprocess
from mmer_core.preprocess.face_finder import NoFace
from mmer_core.preprocess.face_tracker import FaceTracker
from mmer_core.windowing import Window

log = logging.getLogger(__name__)

# How often the idle inference lane looks whether the source has ended or the node is stopping: a window
# wakes it at once, so this bounds only how long a stop waits, not the latency of a score.
IDLE_CHECK_S = 0.5


class UnusableWindow(Exception):
    """The window lacks what the serving model needs (a wrist channel it was trained on)."""


class Queued(NamedTuple):
    """A window waiting for inference, with when it ended on the device's wall clock (ns)."""

    window: Window
    end_ns: int


@dataclass
class AgentCounters:
    windows: int = 0
    scored: int = 0
    rejected: int = 0
    unserved: int = 0
    calibrating: int = 0  # not scored: the model needs the wearer's baseline, still being calibrated
    no_face: int = 0  # camera frames without a face: nothing to score, not an error
    queue_dropped: int = 0
    updates_refused: int = 0
    frames_by_version: dict[tuple[str, int], int] = field(default_factory=dict)


class Agent:
    """One node: owns the slots, spool, queue and streamer."""

    def __init__(
        self,
        device_id: str,
        subject_id: str,
        slots: dict[str, ModelSlot],
        spool: Spool,
        streamer: Streamer,
        clock: ClockEstimate,
        public_key: Ed25519PublicKey | None = None,
        models_dir: Path | None = None,
        providers: list[str] | None = None,
        queue_max: int = 64,
        baselines: WearerBaselines | None = None,
        faces: FaceTracker | None = None,
    ) -> None:
        self.device_id = device_id
        self.subject_id = subject_id
        self.slots = slots
        self.spool = spool
        self.streamer = streamer
        self.clock = clock
        self.public_key = public_key
        self.models_dir = models_dir
        self.providers = providers
        self.baselines = baselines or WearerBaselines(None, subject_id)
        self.faces = faces or FaceTracker()  # the device camera's face, looked for where it last was
        self.queue: queue.Queue[Queued] = queue.Queue(maxsize=queue_max)
        self.sample_clock = SampleClock()
        self.counters = AgentCounters()
        streamer.status_fn = self.status  # every batch reports the node's state
        self.source_done = threading.Event()
        self.stopping = threading.Event()
        self.inference_done = threading.Event()
        self._on_inference_done: Callable[[], None] | None = None  # run() hears of the end without polling
        telemetry.observe(
            "mmer.edge.queue.depth", "windows waiting for inference", lambda: [(self.queue.qsize(), {})]
        )
        telemetry.observe("mmer.edge.spool.depth", "frames not yet acked", lambda: [(self.spool.depth, {})])
        telemetry.observe(
            "mmer.edge.clock.offset", "ns, coordinator - device", lambda: [(clock.offset_ns, {})]
        )
        telemetry.observe(
            "mmer.edge.model.version",
            "serving version",
            lambda: [(s.version, {"modality": m}) for m, s in slots.items()],
        )

    # ----------------------------------------------------------- lanes
    def read_source(self, windows: Iterator[Window]) -> None:
        """Reader lane: enqueue windows without ever blocking on inference."""
        try:
            for w in windows:
                if self.stopping.is_set():
                    break
                if w.modality not in self.slots:
                    continue
                item = Queued(w, self.sample_clock.stamp(w.t_end, time.time_ns()))
                while True:
                    try:
                        self.queue.put_nowait(item)
                        break
                    except queue.Full:
                        try:
                            self.queue.get_nowait()
                            self.counters.queue_dropped += 1
                        except queue.Empty:
                            pass
        except Exception:
            log.exception("source failed; no more windows")
        finally:
            self.source_done.set()

    def infer_loop(self) -> None:
        """Inference lane: score windows in order and spool their frames, until the source is done and drained."""
        try:
            while True:
                try:
                    w, end_ns = self.queue.get(timeout=IDLE_CHECK_S)
                except queue.Empty:
                    # stopping too: a live source (LSL) that went quiet may never yield again to see the flag
                    if self.source_done.is_set() or self.stopping.is_set():
                        break
                    continue
                self.score_window(w, end_ns)
        finally:
            self.inference_done.set()
            if self._on_inference_done is not None:
                with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody waits
                    self._on_inference_done()

    def _rejected(self, modality: str, reason: Exception) -> None:
        """Count and log a window that cannot be scored; it is dropped."""
        self.counters.rejected += 1
        telemetry.windows_rejected.add(1, {"modality": modality})
        log.warning("window rejected: %s", reason)

    def score_window(self, w: Window, ended_ns: int) -> ingest_pb2.ScoreFrame | None:
        """Preprocess and score one window that ended at ended_ns (device wall clock); a bad window is logged
        and counted, never raised."""
        self.counters.windows += 1
        started_ns = self.clock.now_ns()
        end_ns = min(self.clock.to_coordinator_ns(ended_ns), started_ns)  # a clock sync may have moved it
        start_ns = end_ns - int((w.t_end - w.t_start) * 1e9)
        try:
            x = preprocess(w.modality, w.data, self.faces)
            if x.shape != get_spec(w.modality).input_shape or not np.all(np.isfinite(x)):
                raise ValueError(
                    f"{w.modality}: preprocessed window has shape {x.shape} or non-finite values"
                )
        except NoFace:
            self.counters.no_face += 1
            telemetry.windows_no_face.add(1, {"modality": w.modality})
            return None
        except ValueError as exc:
            self._rejected(w.modality, exc)
            return None
        self.baselines.observe(w.modality, x)
        preprocessed_ns = self.clock.now_ns()
        telemetry.preprocess_ms.record((preprocessed_ns - started_ns) / 1e6, {"modality": w.modality})
        slot = self.slots[w.modality]
        t0 = self.clock.now_ns()
        try:
            probs, runner = slot.score(x[None], functools.partial(self._model_input, w.modality))
        except NoModelError:
            self.counters.unserved += 1
            return None
        except Calibrating:
            self.counters.calibrating += 1
            telemetry.windows_calibrating.add(1, {"modality": w.modality})
            return None
        except UnusableWindow as exc:
            self._rejected(w.modality, exc)
            return None
        t1 = self.clock.now_ns()
        telemetry.inference_ms.record((t1 - t0) / 1e6, {"modality": w.modality})
        p = probs[0].astype(np.float64)
        p = p / p.sum()
        frame = ingest_pb2.ScoreFrame(
            device_id=self.device_id,
            subject_id=self.subject_id,
            modality=w.modality,
            window_start_ns=start_ns,
            window_end_ns=end_ns,
            inference_start_ns=t0,
            inference_end_ns=t1,
            model_id=f"{runner.modality}",
            model_version=runner.version,
            taxonomy=runner.manifest.taxonomy.name,
            labels=runner.labels,
            probs=p.tolist(),
            quality=1.0,
            clock_offset_ns=self.clock.offset_ns,
            truth_label=w.label or "",
        )
        frame.seq = self.spool.next_seq(w.modality)
        frame.traceparent = telemetry.trace_window(frame, end_ns, preprocessed_ns)
        seq = self.spool.append(w.modality, frame.SerializeToString(), frame.seq)
        if seq == 0:
            telemetry.frames_dropped.add(1)
        key = (w.modality, runner.version)
        self.counters.frames_by_version[key] = self.counters.frames_by_version.get(key, 0) + 1
        self.counters.scored += 1
        self.streamer.wake()
        return frame

    def _model_input(self, modality: str, runner: ModelRunner, batch: np.ndarray) -> np.ndarray:
        params = runner.manifest.preprocessing.params
        try:
            check_model_input(modality, batch[0], params)
        except ValueError as exc:
            raise UnusableWindow(str(exc)) from None
        return self.baselines.model_input(modality, batch[0], params)[None]

    def status(self) -> ingest_pb2.EdgeStatus:
        best = self.clock.best
        return ingest_pb2.EdgeStatus(
            device_id=self.device_id,
            spool_depth=self.spool.depth,
            queue_depth=self.queue.qsize(),
            frames_dropped=self.spool.dropped,
            frames_refused=self.spool.refused,
            windows_rejected=self.counters.rejected,
            reconnects=self.streamer.stats.reconnects,
            clock_offset_ns=best.offset_ns,
            clock_rtt_ns=best.rtt_ns,
            model_versions={m: s.version for m, s in self.slots.items()},
        )

    # ----------------------------------------------------------- model updates
    async def watch_models(self, channel) -> None:
        """Follow Registry.WatchModels; each new version is fetched, verified and swapped in."""
        stub = registry_pb2_grpc.RegistryStub(channel)
        while True:
            try:
                req = registry_pb2.WatchModelsRequest(
                    device_id=self.device_id,
                    modalities=list(self.slots),
                    current_versions={m: s.version for m, s in self.slots.items()},
                )
                async for update in stub.WatchModels(req, metadata=auth_metadata(self.streamer.token)):
                    await self.apply_update(stub, update)
            except Exception as exc:  # the watch is best effort; the stream keeps serving
                log.warning("model watch interrupted: %s", exc)
            await asyncio.sleep(1.0)

    async def apply_update(self, stub, update: registry_pb2.ModelUpdate) -> bool:
        m = update.manifest
        slot = self.slots.get(m.modality)
        if slot is None or m.version == slot.version or self.public_key is None:
            return False
        manifest, blobs = None, {}
        async for chunk in stub.GetModel(
            registry_pb2.GetModelRequest(modality=m.modality, version=m.version),
            metadata=auth_metadata(self.streamer.token),
        ):
            if chunk.HasField("manifest"):
                manifest = chunk.manifest
            else:
                blobs[chunk.file.name] = blobs.get(chunk.file.name, b"") + chunk.file.data
        try:
            if manifest is None or manifest.SerializeToString(deterministic=True) != m.SerializeToString(
                deterministic=True
            ):
                raise BundleError(f"bundle {m.modality} v{m.version}: GetModel returned a different manifest")
            await asyncio.to_thread(
                install_update,
                slot,
                manifest,
                blobs,
                self.public_key,
                self.models_dir,
                update.rollback,
                self.providers,
            )
            return True
        except BundleError as exc:
            self.counters.updates_refused += 1
            log.warning("model update refused: %s", exc)
            return False

    # ----------------------------------------------------------- run
    def start_threads(self, windows: Iterator[Window]) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.read_source, args=(windows,), name="mmer-source", daemon=True),
            threading.Thread(target=self.infer_loop, name="mmer-inference", daemon=True),
        ]
        for t in threads:
            t.start()
        return threads

    async def run(self, windows: Iterator[Window], channel=None, drain_s: float = 10.0) -> None:
        """Run until the source ends and (within drain_s) everything is acked."""
        started = time.monotonic()
        stream = asyncio.create_task(self.streamer.run())
        watch = asyncio.create_task(self.watch_models(channel)) if channel is not None else None
        loop, finished = asyncio.get_running_loop(), asyncio.Event()
        self._on_inference_done = functools.partial(loop.call_soon_threadsafe, finished.set)
        self.start_threads(windows)
        await finished.wait()
        await self.streamer.drain(drain_s)
        self.streamer.stop()
        if watch is not None:
            watch.cancel()
        await stream
        log.info("agent done in %.1fs: %s", time.monotonic() - started, self.counters)
