"""Turn a chosen INT8 model and its figures into a signed bundle the edge and coordinator accept."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mmer.v1 import manifest_pb2
from mmer_core import bundle
from mmer_core.modalities import get_spec
from mmer_core.preprocess import preprocessing_params
from mmer_core.taxonomy import Taxonomy
from trainer.evaluate import Evaluation, session

SMOKE_SAMPLES = 16


def next_version(directory: Path) -> int:
    """One more than the bundle already in the directory, so versions only go up."""
    try:
        return bundle.read_manifest(directory).version + 1
    except bundle.BundleError:
        return 1


def samples_npz(model_path: Path, x: np.ndarray) -> bytes:
    """Smoke-test windows with the model's own outputs, for the edge to check a new model before serving it."""
    sess = session(model_path)
    probs = sess.run(["probs"], {sess.get_inputs()[0].name: x})[0]
    buf = io.BytesIO()
    np.savez_compressed(buf, x=x.astype(np.float32), probs=probs.astype(np.float32))
    return buf.getvalue()


def write_modality_bundle(
    directory: Path,
    modality: str,
    taxonomy: Taxonomy,
    int8_path: Path,
    ort_path: Path,
    method: str,
    percentile: float,
    calibration_windows: int,
    fp32: Evaluation,
    chosen: Evaluation,
    validation_accuracy: float,
    smoke_x: np.ndarray,
    training_data: str,
    split: str,
    key: Ed25519PrivateKey,
    params: dict[str, float] | None = None,
) -> bundle.Bundle:
    """Write model.int8.onnx, model.int8.ort, samples.npz and the signed manifest into directory; params
    are preprocessing parameters beyond the modality's own (a wearer baseline)."""
    spec = get_spec(modality)
    compression = fp32.bytes / chosen.bytes
    ratio = chosen.accuracy / fp32.accuracy if fp32.accuracy else 0.0
    manifest = manifest_pb2.ModelManifest(
        modality=modality,
        version=next_version(directory),
        taxonomy=taxonomy.to_proto(),
        input=manifest_pb2.InputSpec(name=spec.input_name, shape=list(smoke_x.shape[1:]), dtype="float32"),
        preprocessing=manifest_pb2.Preprocessing(
            sample_rate_hz=spec.sample_rate_hz,
            channels=spec.channels,
            window_s=spec.window_s,
            hop_s=spec.hop_s,
            params={**preprocessing_params(modality), **(params or {})},
        ),
        quantization=manifest_pb2.Quantization(
            method=method,
            percentile=percentile if "percentile" in method else 0.0,
            calibration_windows=calibration_windows,
            format="QDQ",
            per_channel=True,
        ),
        metrics=manifest_pb2.Metrics(
            fp32_accuracy=fp32.accuracy,
            accuracy=chosen.accuracy,
            macro_f1=chosen.macro_f1,
            validation_accuracy=validation_accuracy,
            fp32_bytes=fp32.bytes,
            bytes=chosen.bytes,
            compression=compression,
            accuracy_ratio=ratio,
            efficiency=ratio * compression,
            latency_ms_p50=chosen.latency_ms_p50,
            latency_ms_p99=chosen.latency_ms_p99,
        ),
        training_data=training_data,
        split=split,
        created_ns=time.time_ns(),
        output_name="probs",
    )
    files = {
        "model.int8.onnx": (int8_path.read_bytes(), "model"),
        "model.int8.ort": (ort_path.read_bytes(), "ort"),
        "samples.npz": (samples_npz(int8_path, smoke_x[:SMOKE_SAMPLES]), "samples"),
    }
    return bundle.write_bundle(directory, manifest, files, key)
