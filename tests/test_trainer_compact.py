"""Compaction of INT8 QDQ models: smaller, computes exactly the same, and onnxruntime still fuses it to int8 kernels."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

from trainer.calibration import BatchReader
from trainer.compact import compact

RNG = np.random.default_rng(5)


def conv_gemm_model(path: Path, input_name: str = "image") -> Path:
    """image -> Conv(+bias) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(+bias) -> Softmax -> probs."""
    inits = [
        numpy_helper.from_array(RNG.normal(size=(8, 1, 3, 3)).astype(np.float32), "conv_weight_long_name"),
        numpy_helper.from_array(RNG.normal(size=8).astype(np.float32), "conv_bias_long_name"),
        numpy_helper.from_array(RNG.normal(size=(8, 3)).astype(np.float32), "dense_weight_long_name"),
        numpy_helper.from_array(RNG.normal(size=3).astype(np.float32), "dense_bias_long_name"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node(
                "Conv",
                [input_name, "conv_weight_long_name", "conv_bias_long_name"],
                ["c"],
                pads=[1, 1, 1, 1],
                name="model/conv2d/Conv2D",
            ),
            helper.make_node("Relu", ["c"], ["r"], name="model/conv2d/Relu"),
            helper.make_node("GlobalAveragePool", ["r"], ["g"], name="model/gap"),
            helper.make_node("Flatten", ["g"], ["f"], name="model/flatten"),
            helper.make_node(
                "Gemm",
                ["f", "dense_weight_long_name", "dense_bias_long_name"],
                ["z"],
                name="model/dense/MatMul",
            ),
            helper.make_node("Softmax", ["z"], ["probs"], axis=-1, name="model/softmax"),
        ],
        "conv_gemm",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, 1, 12, 12])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 3])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)]
    )
    model.ir_version = 8
    onnx.save(model, path)
    return path


def quantized(tmp_path: Path, input_name: str = "image") -> tuple[Path, np.ndarray]:
    """The model quantized by onnxruntime as the trainer does, before compaction."""
    fp32 = conv_gemm_model(tmp_path / "fp32.onnx", input_name)
    x = RNG.normal(size=(64, 1, 12, 12)).astype(np.float32)
    out = tmp_path / "qdq.onnx"
    quantize_static(
        str(fp32),
        str(out),
        BatchReader(input_name, x),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        reduce_range=True,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=["model/softmax"],
    )
    return out, x


def run(model: onnx.ModelProto, x: np.ndarray, optimized: Path | None = None) -> np.ndarray:
    options = ort.SessionOptions()
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(["probs"], {sess.get_inputs()[0].name: x})[0]


def test_compacted_model_is_smaller_and_computes_the_same(tmp_path: Path) -> None:
    path, x = quantized(tmp_path)
    before = onnx.load(path)
    after = compact(onnx.load(path))
    onnx.checker.check_model(after)
    assert after.ByteSize() < before.ByteSize() * 0.85, (after.ByteSize(), before.ByteSize())
    np.testing.assert_array_equal(run(after, x), run(before, x))
    assert [i.name for i in after.graph.input] == ["image"] and [o.name for o in after.graph.output] == [
        "probs"
    ]
    assert len(after.graph.value_info) == 0
    assert {o.domain for o in after.opset_import} == {""}, "domains no node uses are dropped"
    names = [i.name for i in after.graph.initializer] + [t for n in after.graph.node for t in n.output]
    assert max(len(n) for n in names if n != "probs") <= 2, "every internal name is short"
    inits = {i.name: i for i in after.graph.initializer}
    for node in after.graph.node:
        source = inits.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if source is not None and source.data_type == TensorProto.INT32:
            assert len(node.input) == 2, "an int32 bias carries no all-zero zero point"
    assert len({i.name for i in after.graph.initializer}) == len(after.graph.initializer)
    used = {t for n in after.graph.node for t in n.input}
    assert all(i.name in used for i in after.graph.initializer), (
        "no orphan initializer (no leftover fp32 copy)"
    )
    assert all(i.data_type != TensorProto.FLOAT or len(i.dims) <= 1 for i in after.graph.initializer), (
        "weights live only as int8; float initializers are at most per-channel scales"
    )


def test_onnxruntime_still_fuses_the_compacted_model_into_int8_kernels(tmp_path: Path) -> None:
    path, x = quantized(tmp_path)
    optimized = tmp_path / "optimized.onnx"
    run(compact(onnx.load(path)), x, optimized)
    ops = Counter(n.op_type for n in onnx.load(optimized).graph.node)
    assert ops["QLinearConv"] == 1 and ops["QGemm"] == 1, ops
    assert ops["Conv"] == 0 and ops["Gemm"] == 0, f"a float kernel is left: {ops}"


def test_short_names_never_take_a_graph_input_or_output_name(tmp_path: Path) -> None:
    path, x = quantized(tmp_path, input_name="0")
    after = compact(onnx.load(path))
    onnx.checker.check_model(after)
    assert after.graph.input[0].name == "0"
    produced = [t for n in after.graph.node for t in n.output]
    assert "0" not in produced and "0" not in {i.name for i in after.graph.initializer}
    np.testing.assert_array_equal(run(after, x), run(onnx.load(path), x))
