"""Model slots: the serving model of each modality, hot swap with smoke test, probation and rollback.

A swap replaces the slot's runner under its lock, so it happens between two
windows: every window is scored exactly once, by the model its frame names.
The new model then serves `probation` windows; if one of them fails (error or
non-finite output) the slot rolls back and that window is re-scored by the old
model.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_node import telemetry
from edge_node.inference import ModelRunner, load_runner
from mmer.v1 import manifest_pb2
from mmer_core.bundle import BundleError, verify_manifest, write_verified_blobs

log = logging.getLogger(__name__)

Prepare = Callable[[ModelRunner, np.ndarray], np.ndarray]


def _unchanged(runner: ModelRunner, x: np.ndarray) -> np.ndarray:
    return x


class NoModelError(RuntimeError):
    """A window arrived for a modality whose first model has not been installed."""


class ModelSlot:
    """The model serving one modality."""

    def __init__(self, modality: str, runner: ModelRunner | None, probation: int = 3) -> None:
        self.modality = modality
        self.current = runner
        self.previous: ModelRunner | None = None
        self.probation_windows = probation
        self._probation = 0
        self._lock = threading.Lock()
        self.rollbacks = 0

    @property
    def version(self) -> int:
        """Serving version, 0 while no model was installed yet."""
        return self.current.version if self.current is not None else 0

    def score(self, x: np.ndarray, prepare: Prepare | None = None) -> tuple[np.ndarray, ModelRunner]:
        """Probabilities (N, K) and the runner that produced them; rolls back a new model that fails.

        Outside probation this is one reference read and `InferenceSession.run`: a swap
        rebinds `current` atomically, so the window in flight finishes on the model it started with.
        `prepare(runner, x)` makes the input that runner's manifest asks for (a wearer baseline); its
        exceptions are the caller's, never a reason to roll back.
        """
        prepare = prepare or _unchanged
        runner = self.current
        if self._probation == 0 and runner is not None:
            return runner.run(prepare(runner, x)), runner
        with self._lock:
            runner = self.current
            if runner is None:
                raise NoModelError(f"{self.modality}: no model installed yet")
            model_input = prepare(runner, x)
            try:
                probs = runner.run(model_input)
                if not np.all(np.isfinite(probs)):
                    raise ValueError(f"{runner.modality} v{runner.version}: non-finite output")
            except Exception:
                if self._probation <= 0 or self.previous is None:
                    raise
                log.exception("%s v%d failed during probation; rolling back", runner.modality, runner.version)
                self._rollback()
                runner = self.current
                probs = runner.run(prepare(runner, x))
            else:
                if self._probation > 0:
                    self._probation -= 1
                    if self._probation == 0:
                        self.previous = None
            return probs, runner

    def swap(self, new: ModelRunner) -> None:
        """Smoke-test `new` (BundleError if it fails) and make it serve from the next window."""
        if new.modality != self.modality:
            raise BundleError(f"{new.modality} v{new.version}: not a {self.modality} model")
        try:
            new.smoke_test()
        except Exception:
            telemetry.model_swaps.add(1, {"modality": new.modality, "outcome": "smoke_failed"})
            raise
        with self._lock:
            self.previous, self.current = self.current, new
            self._probation = self.probation_windows
        telemetry.model_swaps.add(1, {"modality": new.modality, "outcome": "swapped"})
        log.info(
            "%s: now serving v%d (was v%d)",
            new.modality,
            new.version,
            self.previous.version if self.previous else 0,
        )

    def _rollback(self) -> None:
        assert self.previous is not None
        failed = self.current
        self.current, self.previous = self.previous, None
        self._probation = 0
        self.rollbacks += 1
        telemetry.model_swaps.add(1, {"modality": failed.modality, "outcome": "rolled_back"})


def install_update(
    slot: ModelSlot,
    manifest: manifest_pb2.ModelManifest,
    blobs: Mapping[str, bytes],
    public_key: Ed25519PublicKey,
    models_dir: str | Path,
    rollback: bool = False,
    providers: list[str] | None = None,
) -> ModelRunner:
    """Verify (signature, digests, no downgrade unless rollback), store, load beside the old, smoke-test, swap.

    Raises BundleError and leaves the old model serving when any step fails.
    """
    verify_manifest(manifest, public_key)
    where = f"{manifest.modality} v{manifest.version}"
    current = slot.version
    if manifest.version == current:
        raise BundleError(f"bundle {where}: already serving")
    if manifest.version < current and not rollback:
        raise BundleError(f"bundle {where}: downgrade from v{current} refused (not marked a rollback)")
    models_dir = Path(models_dir)
    staging = models_dir / ".incoming" / f"{manifest.modality}-v{manifest.version}"
    shutil.rmtree(staging, ignore_errors=True)
    write_verified_blobs(staging, manifest, blobs)
    runner = load_runner(staging, public_key, providers)
    try:
        slot.swap(runner)
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"bundle {where}: smoke test failed, kept v{current} ({exc})") from exc
    live = models_dir / manifest.modality
    retired = models_dir / ".retired" / f"{manifest.modality}-v{current}"
    retired.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(retired, ignore_errors=True)
    if live.exists():
        live.rename(retired)
    staging.rename(live)
    return runner
