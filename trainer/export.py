"""Keras -> ONNX with the contract's names: input per the modality spec, output "probs", opset >= 17."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

OPSET = 17
OUTPUT_NAME = "probs"
AGREEMENT_TOLERANCE = 1e-4


class ExportMismatchError(RuntimeError):
    """The ONNX model does not reproduce the Keras model; shipping it would silently change predictions."""


def export_onnx(model: object, path: str | Path, input_name: str, opset: int = OPSET) -> Path:
    """Export, then rename the graph's single input and output so the edge can address them by name."""
    import onnx

    if opset < 17:
        raise ValueError(f"export: opset {opset} < 17 is not supported")
    path = Path(path)
    # The exporter traces a called model; one dummy call makes untrained models exportable too.
    model(np.zeros((1, *model.input_shape[1:]), dtype=np.float32))
    with tempfile.TemporaryDirectory(prefix="mmer-export-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        model.export(str(raw), format="onnx", opset_version=opset, verbose=False)
        proto = onnx.load(str(raw))
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    for value in [i for i in graph.input if i.name in initializers]:
        graph.input.remove(value)
    if len(real_inputs) != 1 or len(graph.output) != 1:
        raise ValueError(
            f"export: expected one input and one output, got {len(real_inputs)}/{len(graph.output)}"
        )
    _rename(graph, graph.input[0].name, input_name)
    _rename(graph, graph.output[0].name, OUTPUT_NAME)
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def _rename(graph: object, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new


def onnx_predict(path: str | Path, x: np.ndarray) -> np.ndarray:
    """Run an ONNX model on CPU; used for agreement checks and evaluation."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.asarray(sess.run([OUTPUT_NAME], {name: x.astype(np.float32)})[0])


def check_agreement(
    model: object, path: str | Path, x: np.ndarray, tol: float = AGREEMENT_TOLERANCE
) -> float:
    """Max abs difference Keras vs ONNX on held-out inputs; raises ExportMismatchError above ``tol``."""
    keras_probs = np.asarray(model.predict(x.astype(np.float32), verbose=0))
    onnx_probs = onnx_predict(path, x)
    diff = float(np.max(np.abs(keras_probs - onnx_probs)))
    if not diff < tol:
        raise ExportMismatchError(
            f"export: ONNX and Keras disagree by {diff:.3g} (tolerance {tol:g}) on {path}"
        )
    return diff
