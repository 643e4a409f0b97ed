"""Keras -> ONNX with a named input and a `probs` output, checked against Keras before anyone uses it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from trainer.quiet import quiet

OPSET = 17
AGREEMENT_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The exported model does not compute what the Keras model computes."""


def export_onnx(model, path: Path, input_name: str, check_inputs: np.ndarray) -> Path:
    """Export, rename the graph's output to "probs" and its input to input_name, verify agreement."""
    model(check_inputs[:1])  # Keras exports only models that have been called
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        with quiet("onnx export"):
            model.export(str(raw), format="onnx", opset_version=OPSET, verbose=False)
        graph_model = onnx.load(raw)
    _rename(graph_model, input_name)
    onnx.checker.check_model(graph_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph_model, path)
    diff = max_abs_diff(model, path, check_inputs)
    if not diff < AGREEMENT_TOLERANCE:
        raise ExportError(f"ONNX export of {model.name} disagrees with Keras: max abs diff {diff:.2e}")
    return path


def _rename(model: onnx.ModelProto, input_name: str) -> None:
    """Name the input and output, and shorten every other name.

    The exporter's names ("model/dense_1/BiasAdd/ReadVariableOp:0") are repeated
    for every scale and zero point the quantizer adds; on an edge-sized model they
    would outweigh the INT8 weights themselves.
    """
    graph = model.graph
    renames = {graph.input[0].name: input_name, graph.output[0].name: "probs"}
    for i, init in enumerate(graph.initializer):
        renames.setdefault(init.name, f"w{i}")
    for node in graph.node:
        for name in node.output:
            renames.setdefault(name, f"t{len(renames)}")
    for i, node in enumerate(graph.node):
        node.name = f"{node.op_type.lower()}{i}"
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for collection in (graph.input, graph.output, graph.initializer, graph.value_info):
        for item in collection:
            item.name = renames.get(item.name, item.name)
    model.producer_name = "mmer-trainer"


def max_abs_diff(model, onnx_path: Path, inputs: np.ndarray) -> float:
    """Largest absolute difference between Keras and ONNX Runtime outputs on the same inputs."""
    keras_out = model.predict(inputs, verbose=0, batch_size=256)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(["probs"], {session.get_inputs()[0].name: inputs.astype(np.float32)})[0]
    return float(np.max(np.abs(keras_out - onnx_out)))
