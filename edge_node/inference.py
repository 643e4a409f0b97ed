"""One onnxruntime session per modality, loaded from a verified bundle.

The node's inference path is `ModelRunner.run`: one `InferenceSession.run`
call on a preallocated feed, nothing else, so the bench can hold it to
within 10 % of bare ORT.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mmer.v1 import manifest_pb2
from mmer_core.bundle import Bundle, BundleError, read_bundle

log = logging.getLogger(__name__)

SMOKE_ATOL = 0.05


def session_options(intra_op_threads: int = 1, inter_op_threads: int = 1) -> ort.SessionOptions:
    """Options sized for a small device: few threads, no spinning, sequential execution."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # batch-1 windows of small models: a growing CPU arena per session only costs RSS on a small device
    opts.enable_cpu_mem_arena = False
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def resolve_providers(requested: list[str]) -> list[str]:
    """The requested providers this onnxruntime build has, in order; CPU always last as the fallback."""
    available = set(ort.get_available_providers())
    chosen = [p for p in requested if p in available]
    missing = [p for p in requested if p not in available]
    if missing:
        log.warning(
            "execution providers %s not available here; falling back to %s", missing, chosen or ["CPU"]
        )
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


@dataclass
class ModelRunner:
    """A loaded model of one modality and the manifest naming its version."""

    manifest: manifest_pb2.ModelManifest
    session: ort.InferenceSession
    bundle: Bundle | None = None

    @property
    def modality(self) -> str:
        return self.manifest.modality

    @property
    def version(self) -> int:
        return int(self.manifest.version)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.manifest.taxonomy.labels)

    def __post_init__(self) -> None:
        self._input = self.manifest.input.name
        self._outputs = [self.manifest.output_name or "probs"]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) for a float32 batch (N, *input_shape)."""
        return self.session.run(self._outputs, {self._input: x})[0]

    def smoke_test(self) -> None:
        """Score the bundle's stored sample windows; BundleError unless outputs match what the trainer saw."""
        if self.bundle is None:
            return
        try:
            path = self.bundle.file("samples")
        except BundleError:
            log.warning(
                "%s v%d: bundle has no samples.npz; smoke test only checks shapes",
                self.modality,
                self.version,
            )
            x = np.zeros((1, *self.manifest.input.shape), np.float32)
            expected = None
        else:
            with np.load(path) as npz:
                x, expected = npz["x"].astype(np.float32), npz["probs"]
        probs = self.run(x)
        k = len(self.labels)
        if probs.shape != (len(x), k) or not np.all(np.isfinite(probs)):
            raise BundleError(
                f"{self.modality} v{self.version}: smoke test output shape {probs.shape} or values bad"
            )
        if expected is not None and (
            not np.allclose(probs, expected, atol=SMOKE_ATOL)
            or np.mean(probs.argmax(1) == expected.argmax(1)) < 0.9
        ):
            raise BundleError(
                f"{self.modality} v{self.version}: smoke test outputs differ from the bundle's samples"
            )


def load_runner(
    bundle_dir: str | Path,
    public_key: Ed25519PublicKey,
    providers: list[str] | None = None,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
) -> ModelRunner:
    """Verify a bundle (signature and digests) and open its model; BundleError if it does not verify."""
    bundle = read_bundle(bundle_dir, public_key)
    session = ort.InferenceSession(
        str(bundle.file("model")),
        sess_options=session_options(intra_op_threads, inter_op_threads),
        providers=resolve_providers(providers or ["CPUExecutionProvider"]),
    )
    return ModelRunner(bundle.manifest, session, bundle)
