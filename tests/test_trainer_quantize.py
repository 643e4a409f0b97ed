"""Export and quantization: names, agreement, and Max-Percentile's ranges against a hand computation."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.trainer_fixtures import blobs
from trainer.calibration import create_max_percentile_calibrator, max_percentile_range
from trainer.export import OUTPUT_NAME, ExportMismatchError, check_agreement, export_onnx, onnx_predict
from trainer.models import TrainConfig, build_model, train_model
from trainer.quantize import METHODS, ArrayReader, QuantConfig, quantize_model


@pytest.fixture(scope="module")
def dense_model(tmp_path_factory):
    x, y, _ = blobs(600, (12,), seed=1)
    model = build_model((12,), 4, x[:400], input_name="hr_features", seed=0)
    train_model(model, (x[:400], y[:400]), (x[400:500], y[400:500]), TrainConfig(epochs=8, seed=0))
    path = export_onnx(model, tmp_path_factory.mktemp("export") / "model.onnx", "hr_features")
    return model, path, x, y


def test_export_names_opset_and_agreement(dense_model):
    model, path, x, _ = dense_model
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["hr_features"]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    diff = check_agreement(model, path, x[500:])
    assert diff < 1e-4
    assert onnx_predict(path, x[:3]).shape == (3, 4)


def test_agreement_check_fails_loudly_on_a_different_model(dense_model, tmp_path):
    model, _, x, _ = dense_model
    other = build_model((12,), 4, x[:400], input_name="hr_features", seed=7)
    other_path = export_onnx(other, tmp_path / "other.onnx", "hr_features")
    with pytest.raises(ExportMismatchError, match="disagree"):
        check_agreement(model, other_path, x[500:])


def test_export_refuses_old_opset(dense_model, tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_onnx(dense_model[0], tmp_path / "m.onnx", "x", opset=13)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_loads_and_agrees_with_fp32(dense_model, tmp_path, method):
    _, path, x, _ = dense_model
    out = quantize_model(path, tmp_path / f"{method}.onnx", x[:256], QuantConfig(method=method))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].name == "hr_features"
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    held_out = x[500:]
    agree = np.mean(onnx_predict(out, held_out).argmax(1) == onnx_predict(path, held_out).argmax(1))
    assert agree >= 0.95, f"{method}: argmax agreement {agree:.3f}"


def test_unknown_method_is_refused(dense_model, tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        quantize_model(dense_model[1], tmp_path / "q.onnx", dense_model[2][:16], QuantConfig(method="kl"))


def _tiny_graph(path):
    """x(N,3) -> MatMul -> h (signed) -> Relu -> probs (never negative)."""
    w = numpy_helper.from_array(np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.25]], np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["probs"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return numpy_helper.to_array(w)


def test_max_percentile_ranges_equal_hand_computed_percentile_of_batch_maxima(tmp_path):
    w = _tiny_graph(tmp_path / "tiny.onnx")
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((80, 3)) * rng.uniform(0.2, 3.0, size=(80, 1))).astype(np.float32)
    p = 90.0
    cal = create_max_percentile_calibrator(tmp_path / "tiny.onnx", str(tmp_path / "aug.onnx"), percentile=p)
    cal.collect_data(ArrayReader("x", x, batch_size=8))
    ranges = cal.compute_data()
    batches = [x[i : i + 8] for i in range(0, 80, 8)]
    expected = {}
    for name, fn in {"x": lambda b: b, "h": lambda b: b @ w, "probs": lambda b: np.maximum(b @ w, 0)}.items():
        maxima = [np.max(np.abs(fn(b))) for b in batches]
        hi = np.percentile(maxima, p)
        lo = -hi if min(np.min(fn(b)) for b in batches) < 0 else 0.0
        expected[name] = (lo, hi)
    for name, (lo, hi) in expected.items():
        got_lo, got_hi = ranges[name].range_value
        assert float(got_hi) == pytest.approx(hi, rel=1e-5), name
        assert float(got_lo) == pytest.approx(lo, abs=1e-6), name
    assert float(ranges["probs"].range_value[0]) == 0.0  # Relu output keeps its sign
    # Not min/max: the 90th percentile of per-batch maxima is below the global max for signed h.
    assert float(ranges["h"].range_value[1]) < float(np.max(np.abs(x @ w)))


def test_max_percentile_range_validates_input():
    with pytest.raises(ValueError, match="percentile"):
        max_percentile_range(np.array([0.0]), np.array([1.0]), 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        max_percentile_range(np.array([]), np.array([]), 99.0)
    assert max_percentile_range(np.array([0.0, 0.5]), np.array([2.0, 4.0]), 100.0) == (0.0, 4.0)
    assert max_percentile_range(np.array([-5.0, 0.5]), np.array([2.0, 4.0]), 100.0) == (-5.0, 5.0)
