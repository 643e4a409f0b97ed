"""Model registry: verified bundles per modality, staged rollout, and the versions each device should run.

A pushed version first goes to a fraction of devices (the canary set, chosen by
a stable hash of device and version so every replica picks the same devices).
The coordinator watches the canary devices' frames: when enough arrive and
their mean confidence stays near the stable devices', the version is promoted;
when confidence collapses it is rolled back. Promote and Rollback do the same
by command. Watchers are told whenever the version meant for them changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from coordinator.store import Store, StoreError
from mmer.v1 import ingest_pb2, manifest_pb2, registry_pb2
from mmer_core import bundle

log = logging.getLogger("mmer.coordinator.registry")
STABLE, CANARY, RETIRED, ROLLED_BACK = "stable", "canary", "retired", "rolled_back"


class RegistryError(ValueError):
    """A registry request that cannot be served; `code` names the gRPC status to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Rollout:
    """One modality's versions: what most devices run, and the version under trial, if any."""

    stable: int = 0
    canary: int = 0
    stages: dict[str, str] = field(default_factory=dict)  # version (as str, for JSON) -> stage

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Rollout:
        return cls(**json.loads(data))


@dataclass
class Trial:
    """Evidence about a canary: frame counts and summed confidence, canary vs stable devices."""

    canary_frames: int = 0
    canary_conf: float = 0.0
    stable_frames: int = 0
    stable_conf: float = 0.0


@dataclass(frozen=True)
class RolloutRule:
    """When a canary is decided: after `min_frames` canary frames, promote unless confidence collapsed."""

    fraction: float = 0.25
    min_frames: int = 50
    min_confidence_ratio: float = 0.8


def in_canary(device_id: str, modality: str, version: int, fraction: float) -> bool:
    """Stable per (device, modality, version) choice, identical on every replica."""
    digest = hashlib.sha256(f"{device_id}/{modality}/{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


class Watcher:
    """One WatchModels stream: its device, modalities and pending updates."""

    def __init__(self, device_id: str, modalities: Iterable[str]) -> None:
        self.device_id = device_id
        self.modalities = set(modalities)
        self.queue: asyncio.Queue[registry_pb2.ModelUpdate] = asyncio.Queue()
        self.sent: dict[str, int] = {}


class Registry:
    """The registry of one coordinator process; bundles and rollout state live in the store."""

    def __init__(self, store: Store, public_key: bundle.Ed25519PublicKey | None, rule: RolloutRule) -> None:
        self.store = store
        self.public_key = public_key
        self.rule = rule
        self.rollouts: dict[str, Rollout] = {}
        self.trials: dict[str, Trial] = {}
        self.watchers: set[Watcher] = set()
        self.manifests: dict[tuple[str, int], manifest_pb2.ModelManifest] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Pick up rollout state another replica or an earlier run left in the store."""
        for modality, data in (await self.store.get_rollouts()).items():
            self.rollouts[modality] = Rollout.decode(data)
        for m in await self.store.list_manifests(None):
            self.manifests[(m.modality, m.version)] = m

    def target(self, device_id: str, modality: str) -> int:
        """The version this device should run (0 = none yet)."""
        r = self.rollouts.get(modality)
        if r is None:
            return 0
        if r.canary and in_canary(device_id, modality, r.canary, self.rule.fraction):
            return r.canary
        return r.stable

    async def push(
        self, manifest: manifest_pb2.ModelManifest, blobs: Mapping[str, bytes]
    ) -> registry_pb2.PushModelResponse:
        """Verify signature and digests, store, and start the version's rollout."""
        if self.public_key is None:
            raise RegistryError(
                "FAILED_PRECONDITION", "registry has no --trainer-pubkey; it refuses all bundles"
            )
        try:
            bundle.verify_manifest(manifest, self.public_key)
        except bundle.BundleError as exc:
            raise RegistryError("PERMISSION_DENIED", f"bundle refused: {exc}") from None
        try:
            bundle.verify_blobs(manifest, blobs)
        except bundle.BundleError as exc:
            raise RegistryError("INVALID_ARGUMENT", f"bundle refused: {exc}") from None
        modality, version = manifest.modality, manifest.version
        async with self._lock:
            r = self._draft(modality, missing_ok=True)
            if str(version) in r.stages:
                raise RegistryError("ALREADY_EXISTS", f"{modality} v{version} is already in the registry")
            if version < max(r.stable, r.canary):
                raise RegistryError(
                    "FAILED_PRECONDITION",
                    f"{modality} v{version} is older than v{max(r.stable, r.canary)}; use Rollback instead",
                )
            await self.store.put_model(manifest, blobs)
            self.manifests[(modality, version)] = manifest
            if r.canary:
                r.stages[str(r.canary)] = RETIRED
            if r.stable == 0 or self.rule.fraction >= 1.0:
                self._make_stable(r, version)
            else:
                r.canary = version
                r.stages[str(version)] = CANARY
            await self._save(modality, r)
        log.info("registry: %s v%d stored, stage %s", modality, version, r.stages[str(version)])
        return registry_pb2.PushModelResponse(
            modality=modality, version=version, stage=r.stages[str(version)]
        )

    async def promote(self, modality: str, version: int) -> registry_pb2.PromoteResponse:
        """Make a stored version the stable one for every device."""
        async with self._lock:
            r = self._draft(modality)
            version = version or r.canary
            if str(version) not in r.stages:
                raise RegistryError("NOT_FOUND", f"{modality} v{version} is not in the registry")
            self._make_stable(r, version)
            await self._save(modality, r)
        return registry_pb2.PromoteResponse(modality=modality, version=version, stage=STABLE)

    async def rollback(self, modality: str, to_version: int, reason: str) -> registry_pb2.RollbackResponse:
        """Withdraw the canary, or go back to an earlier (default: the previous) stable version."""
        async with self._lock:
            r = self._draft(modality)
            if r.canary and not to_version:
                r.stages[str(r.canary)] = ROLLED_BACK
                r.canary = 0
            else:
                if not to_version:
                    earlier = [int(v) for v, s in r.stages.items() if s == RETIRED and int(v) < r.stable]
                    if not earlier:
                        raise RegistryError(
                            "FAILED_PRECONDITION", f"{modality}: no earlier version to go back to"
                        )
                    to_version = max(earlier)
                if str(to_version) not in r.stages:
                    raise RegistryError("NOT_FOUND", f"{modality} v{to_version} is not in the registry")
                if r.canary:
                    r.stages[str(r.canary)] = ROLLED_BACK
                    r.canary = 0
                r.stages[str(r.stable)] = ROLLED_BACK
                r.stable = to_version
                r.stages[str(to_version)] = STABLE
            await self._save(modality, r, rollback=True)
        log.warning("registry: %s rolled back to v%d (%s)", modality, r.stable, reason or "by command")
        return registry_pb2.RollbackResponse(modality=modality, version=r.stable)

    async def observe(self, frame: ingest_pb2.ScoreFrame) -> None:
        """Count a frame as evidence for its modality's canary; decide the trial when there is enough. Never
        raises: the caller has stored the frame, and a decision the store refused is taken on a later frame."""
        r = self.rollouts.get(frame.modality)
        trial = self.trials.get(frame.modality)
        if r is None or trial is None or not r.canary:
            return
        confidence = max(frame.probs) if frame.probs else 0.0
        if frame.model_version == r.canary:
            trial.canary_frames += 1
            trial.canary_conf += confidence
        elif frame.model_version == r.stable:
            trial.stable_frames += 1
            trial.stable_conf += confidence
        if trial.canary_frames < self.rule.min_frames:
            return
        canary_mean = trial.canary_conf / trial.canary_frames
        stable_mean = trial.stable_conf / trial.stable_frames if trial.stable_frames else canary_mean
        try:  # the frames are stored already: a store outage postpones the decision to a later frame
            if canary_mean >= self.rule.min_confidence_ratio * stable_mean:
                promoted = await self.promote(frame.modality, r.canary)
                log.info("registry: %s v%d promoted automatically", frame.modality, promoted.version)
            else:
                await self.rollback(
                    frame.modality, 0, f"canary confidence {canary_mean:.2f} vs stable {stable_mean:.2f}"
                )
        except StoreError as exc:
            log.warning("registry: deciding the %s canary: %s", frame.modality, exc)

    async def versions(self, modality: str) -> list[registry_pb2.ModelVersion]:
        out = []
        for m in await self.store.list_manifests(modality or None):
            r = self.rollouts.get(m.modality, Rollout())
            out.append(
                registry_pb2.ModelVersion(
                    modality=m.modality,
                    version=m.version,
                    stage=r.stages.get(str(m.version), RETIRED),
                    accuracy=m.metrics.accuracy,
                    method=m.quantization.method,
                    pushed_ns=m.created_ns,
                    bytes=sum(f.size for f in m.files),
                )
            )
        return out

    def watch(self, device_id: str, modalities: Iterable[str]) -> Watcher:
        """A watcher that first gets the current versions meant for it."""
        w = Watcher(device_id, modalities)
        self.watchers.add(w)
        for modality in sorted(w.modalities):
            self._notify(w, modality, rollback=False)
        return w

    def unwatch(self, w: Watcher) -> None:
        self.watchers.discard(w)

    def _draft(self, modality: str, missing_ok: bool = False) -> Rollout:
        """A copy of the modality's rollout to change: it replaces the one in memory only once stored."""
        r = self.rollouts.get(modality)
        if r is None:
            if not missing_ok:
                raise RegistryError("NOT_FOUND", f"no models for modality {modality!r}")
            return Rollout()
        return Rollout(r.stable, r.canary, dict(r.stages))

    def _make_stable(self, r: Rollout, version: int) -> None:
        if r.stable and r.stable != version:
            r.stages[str(r.stable)] = RETIRED
        if r.canary and r.canary != version:
            r.stages[str(r.canary)] = RETIRED
        r.stable, r.canary = version, 0
        r.stages[str(version)] = STABLE

    async def _save(self, modality: str, r: Rollout, rollback: bool = False) -> None:
        """Store the changed rollout, and only then make it this replica's (a store outage raises StoreError
        with memory unchanged, so memory and store never disagree); then tell watchers and replicas."""
        await self.store.put_rollout(modality, r.encode())
        self._adopt(modality, r, rollback)
        try:  # stored already: a replica that misses this reloads every modality when its feed reconnects
            await self.store.announce_rollout(modality, rollback)
        except StoreError as exc:
            log.warning("registry: announcing the %s rollout to the other replicas: %s", modality, exc)

    async def apply_change(self, modality: str, rollback: bool) -> None:
        """Another replica changed a modality's rollout: reload it from the store and tell our watchers."""
        async with self._lock:
            data = (await self.store.get_rollouts()).get(modality)
            if data is None:
                return
            manifests = await self.store.list_manifests(modality)
            for m in manifests:
                self.manifests[(m.modality, m.version)] = m
            self._adopt(modality, Rollout.decode(data), rollback)

    def _adopt(self, modality: str, r: Rollout, rollback: bool) -> None:
        """Make a stored rollout this replica's: a new trial starts its evidence afresh; watchers hear of it."""
        before = self.rollouts.get(modality)
        self.rollouts[modality] = r
        if not r.canary:
            self.trials.pop(modality, None)
        elif before is None or before.canary != r.canary:
            self.trials[modality] = Trial()
        for w in list(self.watchers):
            if modality in w.modalities:
                self._notify(w, modality, rollback)

    def _notify(self, w: Watcher, modality: str, rollback: bool) -> None:
        version = self.target(w.device_id, modality)
        if version and w.sent.get(modality) != version:
            w.sent[modality] = version
            stage = self.rollouts[modality].stages.get(str(version), STABLE)
            w.queue.put_nowait(
                registry_pb2.ModelUpdate(
                    manifest=self.manifests.get((modality, version))
                    or manifest_pb2.ModelManifest(modality=modality, version=version),
                    rollback=rollback,
                    stage=stage,
                )
            )
