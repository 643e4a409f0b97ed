"""The model registry: signed bundles per modality, versions, staged rollout, and watchers.

A bundle is stored only after its Ed25519 signature and every file digest
verify against the trainer's key. Each modality has one serving version and
at most one staged version, which a fraction of devices (chosen by a stable
hash of their id) receive first; promotion makes it serving for all, rollback
makes an earlier version serving again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mmer.v1 import manifest_pb2, registry_pb2
from mmer_core import bundle

MAX_BUNDLE_BYTES = 64 * 1024 * 1024


class RegistryError(ValueError):
    """A push, promotion or rollback the registry refuses; `code` names the gRPC status to answer."""

    def __init__(self, message: str, code: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Stored:
    """One stored version."""

    manifest: manifest_pb2.ModelManifest
    blobs: dict[str, bytes]
    pushed_ns: int
    stage: str


@dataclass
class ModalityState:
    """Versions of one modality and which serve."""

    versions: dict[int, Stored] = field(default_factory=dict)
    serving: int = 0
    staged: int = 0


class Registry:
    """Bundles and rollout state, with a change signal for WatchModels streams."""

    def __init__(self, public_key: Ed25519PublicKey | None, rollout_fraction: float) -> None:
        if not 0.0 <= rollout_fraction <= 1.0:
            raise ValueError(f"rollout fraction must be within [0, 1], got {rollout_fraction}")
        self.public_key = public_key
        self.rollout_fraction = rollout_fraction
        self.modalities: dict[str, ModalityState] = {}
        self.changed = asyncio.Condition()
        self.generation = 0

    def labels(self, modality: str) -> tuple[str, ...] | None:
        """The label set of the serving version, which incoming frames must match."""
        state = self.modalities.get(modality)
        if state is None or not state.serving:
            return None
        return tuple(state.versions[state.serving].manifest.taxonomy.labels)

    async def push(
        self, manifest: manifest_pb2.ModelManifest, blobs: dict[str, bytes]
    ) -> registry_pb2.PushModelResponse:
        """Verify and store a bundle; it is staged when a version already serves and rollout is on."""
        if self.public_key is None:
            raise RegistryError(
                "this coordinator has no trainer public key (--trainer-pubkey)", "FAILED_PRECONDITION"
            )
        try:
            bundle.verify_manifest(manifest, self.public_key)
            bundle.verify_blobs(manifest, blobs)
        except bundle.BundleError as exc:
            raise RegistryError(str(exc), "PERMISSION_DENIED") from None
        state = self.modalities.setdefault(manifest.modality, ModalityState())
        newest = max(state.versions, default=0)
        if manifest.version <= newest:
            raise RegistryError(
                f"bundle {manifest.modality} v{manifest.version}: version must exceed the newest stored ({newest})",
                "ALREADY_EXISTS",
            )
        current = self.labels(manifest.modality)
        if current is not None and tuple(manifest.taxonomy.labels) != current:
            raise RegistryError(
                f"bundle {manifest.modality} v{manifest.version}: labels {list(manifest.taxonomy.labels)} differ from "
                f"the serving version's {list(current)}"
            )
        stage = "staged" if state.serving and self.rollout_fraction < 1.0 else "serving"
        if state.staged:
            state.versions[state.staged].stage = "retired"
        state.versions[manifest.version] = Stored(manifest, dict(blobs), time.time_ns(), stage)
        if stage == "serving":
            if state.serving:
                state.versions[state.serving].stage = "retired"
            state.serving, state.staged = manifest.version, 0
        else:
            state.staged = manifest.version
        await self._notify()
        return registry_pb2.PushModelResponse(
            modality=manifest.modality, version=manifest.version, stage=stage
        )

    async def promote(self, modality: str, version: int) -> registry_pb2.PromoteResponse:
        """Make a staged version serve every device."""
        state = self._state(modality)
        if version != state.staged:
            raise RegistryError(f"{modality} v{version} is not the staged version (staged: {state.staged or 'none'})",
                                "FAILED_PRECONDITION")  # fmt: skip
        state.versions[state.serving].stage = "retired"
        state.serving, state.staged = version, 0
        state.versions[version].stage = "serving"
        await self._notify()
        return registry_pb2.PromoteResponse(modality=modality, version=version, stage="serving")

    async def rollback(self, modality: str, to_version: int) -> registry_pb2.RollbackResponse:
        """Serve an earlier version again (the previous serving one when to_version is 0)."""
        state = self._state(modality)
        if to_version == 0:
            older = [v for v in state.versions if v < state.serving]
            if not older:
                raise RegistryError(f"{modality}: no earlier version to roll back to", "FAILED_PRECONDITION")
            to_version = max(older)
        if to_version not in state.versions or to_version >= max(state.serving, state.staged):
            raise RegistryError(f"{modality}: cannot roll back to v{to_version}", "FAILED_PRECONDITION")
        for v in (state.serving, state.staged):
            if v:
                state.versions[v].stage = "rolled_back"
        state.serving, state.staged = to_version, 0
        state.versions[to_version].stage = "serving"
        await self._notify()
        return registry_pb2.RollbackResponse(modality=modality, version=to_version)

    def assigned(self, modality: str, device_id: str) -> Stored | None:
        """The version a device should run: staged for the canary fraction, serving for the rest."""
        state = self.modalities.get(modality)
        if state is None or not state.serving:
            return None
        if state.staged and is_canary(device_id, self.rollout_fraction):
            return state.versions[state.staged]
        return state.versions[state.serving]

    def get(self, modality: str, version: int) -> Stored:
        state = self._state(modality)
        version = version or state.serving
        if version not in state.versions:
            raise RegistryError(f"{modality} v{version} is not stored", "NOT_FOUND")
        return state.versions[version]

    def list(self, modality: str = "") -> registry_pb2.ListModelsResponse:
        out = registry_pb2.ListModelsResponse()
        for name in sorted(self.modalities):
            if modality and name != modality:
                continue
            for v, s in sorted(self.modalities[name].versions.items()):
                out.versions.append(registry_pb2.ModelVersion(
                    modality=name, version=v, stage=s.stage, accuracy=s.manifest.metrics.accuracy,
                    method=s.manifest.quantization.method, pushed_ns=s.pushed_ns,
                    bytes=sum(len(b) for b in s.blobs.values()),
                ))  # fmt: skip
        return out

    def _state(self, modality: str) -> ModalityState:
        if modality not in self.modalities:
            raise RegistryError(f"no bundle of modality {modality!r} is stored", "NOT_FOUND")
        return self.modalities[modality]

    async def _notify(self) -> None:
        async with self.changed:
            self.generation += 1
            self.changed.notify_all()


def is_canary(device_id: str, fraction: float) -> bool:
    """Stable choice of the devices that get staged versions first."""
    digest = hashlib.sha256(device_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction
