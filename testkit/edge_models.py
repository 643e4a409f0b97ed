"""Tiny signed bundles for the edge tests: a linear softmax ONNX model per modality, made with onnx.helper."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from mmer.v1 import manifest_pb2
from mmer_core.bundle import generate_keypair, load_private_key, write_bundle
from mmer_core.modalities import SPECS
from mmer_core.taxonomy import QUADRANTS
from mmer_core.wearer_baseline import with_levels


def input_shape(modality: str, params: dict[str, float] | None = None) -> tuple[int, ...]:
    """The model input a bundle with these params takes: the spec's, twice as wide with wearer levels."""
    shape = SPECS[modality].input_shape
    return (2 * shape[0],) if with_levels(params or {}) else shape


def model_bytes(
    modality: str, seed: int = 0, nan: bool = False, params: dict[str, float] | None = None
) -> bytes:
    """input (N, *shape) -> flatten -> matmul -> softmax -> "probs" (N, 4); all-NaN output when nan."""
    spec = SPECS[modality]
    shape = input_shape(modality, params)
    d = int(np.prod(shape))
    w = np.random.default_rng(seed).normal(0, 0.05, (d, 4)).astype(np.float32)
    if nan:
        w[:] = np.nan
    nodes = [
        helper.make_node("Flatten", [spec.input_name], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        f"{modality}_tiny",
        [helper.make_tensor_value_info(spec.input_name, TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def samples_bytes(
    model: bytes, modality: str, wrong: bool = False, params: dict[str, float] | None = None
) -> bytes:
    spec = SPECS[modality]
    x = np.random.default_rng(1).normal(0, 1, (4, *input_shape(modality, params))).astype(np.float32)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    probs = sess.run(["probs"], {spec.input_name: x})[0]
    if wrong:
        probs = np.roll(probs, 1, axis=1) * 0 + np.eye(4, dtype=np.float32)[[0, 1, 2, 3]]
    buf = io.BytesIO()
    np.savez(buf, x=x, probs=probs)
    return buf.getvalue()


def manifest_for(
    modality: str, version: int, params: dict[str, float] | None = None
) -> manifest_pb2.ModelManifest:
    spec = SPECS[modality]
    return manifest_pb2.ModelManifest(
        modality=modality,
        version=version,
        taxonomy=QUADRANTS.to_proto(),
        input=manifest_pb2.InputSpec(
            name=spec.input_name, shape=list(input_shape(modality, params)), dtype="float32"
        ),
        output_name="probs",
        preprocessing=manifest_pb2.Preprocessing(params=params or {}),
        quantization=manifest_pb2.Quantization(method="none"),
    )


def make_bundle(
    directory: Path,
    key_dir: Path,
    modality: str,
    version: int,
    seed: int = 0,
    nan: bool = False,
    wrong_samples: bool = False,
    params: dict[str, float] | None = None,
):
    """Write a signed bundle; returns the Bundle (keys are created in key_dir on first use)."""
    if not (key_dir / "trainer.key").exists():
        generate_keypair(key_dir)
    model = model_bytes(modality, seed, nan, params)
    files = {
        "model.onnx": (model, "model"),
        "samples.npz": (
            samples_bytes(model_bytes(modality, seed, params=params), modality, wrong_samples, params),
            "samples",
        ),
    }
    return write_bundle(
        directory, manifest_for(modality, version, params), files, load_private_key(key_dir / "trainer.key")
    )


def bundle_blobs(bundle) -> dict[str, bytes]:
    return {f.name: (bundle.path / f.name).read_bytes() for f in bundle.manifest.files}


def check_model(model: bytes) -> None:
    onnx.checker.check_model(onnx.load_from_string(model))
