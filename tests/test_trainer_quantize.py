"""Quantization: Max-Percentile ranges by hand, every method agrees with fp32, ONNX agrees with Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from trainer.calibration import BatchReader, MaxPercentileCalibrater, max_percentile_ranges
from trainer.quantize import METHODS, quantize

RNG = np.random.default_rng(3)
W1 = RNG.normal(size=(4, 6)).astype(np.float32)
W2 = RNG.normal(size=(6, 3)).astype(np.float32)


def tiny_model(path: Path) -> Path:
    """x -> MatMul(W1) = h -> Relu = r -> MatMul(W2) = probs_logits -> Softmax = probs."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w2"], ["z"]),
            helper.make_node("Softmax", ["z"], ["probs"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(W1, "w1"), numpy_helper.from_array(W2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_max_percentile_ranges_equal_a_hand_computed_percentile_of_batch_maxima(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "tiny.onnx")
    x = RNG.normal(size=(200, 4)).astype(np.float32)
    x[17] *= 40.0  # one outlier window: Max would let it set the range, Max-Percentile must not
    reader = BatchReader("x", x, batch_size=10)
    p = 90.0
    ranges = max_percentile_ranges(model, reader, p, tmp_path)

    h = x @ W1
    r = np.maximum(h, 0)
    z = r @ W2
    for name, values in (("x", x), ("h", h), ("r", r), ("z", z)):
        maxima = [np.abs(values[i : i + 10]).max() for i in range(0, 200, 10)]
        expected = np.percentile(maxima, p)
        lo, hi = ranges[name].range_value
        assert float(hi) == pytest.approx(expected, rel=1e-5), name
        assert float(lo) == pytest.approx(-expected if values.min() < 0 else 0.0, rel=1e-5), name
        assert float(hi) < np.abs(values).max(), f"{name}: the outlier batch must not set the range"
    assert float(ranges["r"].range_value[0]) == 0.0, "a never-negative tensor keeps 0 as its lower bound"


def test_max_percentile_of_100_is_max(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "tiny.onnx")
    x = RNG.normal(size=(40, 4)).astype(np.float32)
    ranges = max_percentile_ranges(model, BatchReader("x", x, 8), 100.0, tmp_path)
    assert float(ranges["x"].range_value[1]) == pytest.approx(np.abs(x).max(), rel=1e-6)


def test_bad_percentile_and_empty_calibration_are_refused(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "tiny.onnx")
    with pytest.raises(ValueError, match="percentile must be in"):
        MaxPercentileCalibrater(model, percentile=0.0)
    with pytest.raises(ValueError, match="at least one calibration window"):
        quantize(model, tmp_path / "q.onnx", "max", np.empty((0, 4), np.float32))
    with pytest.raises(ValueError, match="unknown quantization method 'minmax'"):
        quantize(model, tmp_path / "q.onnx", "minmax", np.ones((4, 4), np.float32))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """A small HR model really trained on synthetic data and exported to ONNX."""
    from mmer_core.preprocess import preprocess_batch
    from mmer_core.synthetic import make_windows
    from trainer.export import export_onnx
    from trainer.models import build_model, fit

    data = make_windows("hr", 12, 240, seed=11)
    x = preprocess_batch("hr", data.windows)
    y = data.labels
    n = len(x) * 4 // 5
    model = build_model("hr", 4, x, seed=1)
    fit(model, x[:n], y[:n], x[n:], y[n:], epochs=8, seed=1, log=lambda _: None)
    path = export_onnx(model, tmp_path_factory.mktemp("m") / "hr.onnx", "hrv", x[:64])
    return model, path, x


def test_onnx_export_agrees_with_keras_and_has_the_contract_names(trained) -> None:
    from trainer.export import max_abs_diff

    model, path, x = trained
    assert max_abs_diff(model, path, x[:200]) < 1e-4
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["hrv"]
    assert [o.name for o in graph.output] == ["probs"]
    assert onnx.load(path).opset_import[0].version >= 17


@pytest.mark.parametrize("method", METHODS)
def test_every_method_makes_a_model_that_agrees_with_fp32(trained, tmp_path: Path, method: str) -> None:
    _, fp32_path, x = trained
    q = quantize(fp32_path, tmp_path / f"{method}.onnx", method, x[:128])
    fp32 = ort.InferenceSession(str(fp32_path)).run(["probs"], {"hrv": x})[0]
    int8 = ort.InferenceSession(str(q)).run(["probs"], {"hrv": x})[0]
    agreement = float((fp32.argmax(1) == int8.argmax(1)).mean())
    assert agreement >= 0.95, f"{method}: argmax agreement {agreement:.3f}"
    assert np.allclose(int8.sum(axis=1), 1.0, atol=1e-3), "softmax stays float: probabilities sum to 1"
    ops = {n.op_type for n in onnx.load(q).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert q.stat().st_size * 2.5 < fp32_path.stat().st_size, "INT8 weights make the file much smaller"


def conv_model(path: Path, weight: np.ndarray) -> Path:
    """x -> Conv(weight, 'same' padding) -> Relu = probs (a feature map: nothing hides a wrong sum)."""
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["probs"]),
        ],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, weight.shape[1], 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, weight.shape[0], 8, 8])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_int8_kernels_compute_what_the_quantized_graph_means(tmp_path: Path) -> None:
    """Full-range uint8 activations times full-range int8 weights overflow the int16 pair sums of
    x86 AVX2 kernels without VNNI (vpmaddubsw saturates): onnxruntime's fused QLinearConv then differs
    from the QDQ graph's own arithmetic (here by up to a third of the output range, and speech lost
    3 pp). Quantized weights keep 7 bits (reduce_range), so the sums fit on every x86 CPU."""
    weight = RNG.uniform(0.8, 1.0, size=(16, 8, 3, 3)).astype(np.float32)
    x = RNG.uniform(0.0, 1.0, size=(32, 8, 8, 8)).astype(np.float32)
    x[:, :, ::2] = 1.0  # rows of peak activations: adjacent products are both near 255 x 127
    q = quantize(conv_model(tmp_path / "conv.onnx", weight), tmp_path / "conv.int8.onnx", "max", x)

    def outputs(level: ort.GraphOptimizationLevel) -> np.ndarray:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        return ort.InferenceSession(str(q), options).run(["probs"], {"x": x})[0]

    fused = outputs(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)  # QLinearConv, integer kernels
    reference = outputs(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)  # DequantizeLinear -> float Conv
    assert np.abs(fused - reference).max() <= 1e-3 * np.abs(reference).max()


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_histogram_methods_calibrate_on_a_count_that_is_not_a_whole_number_of_batches(
    tmp_path: Path, method: str
) -> None:
    model = tiny_model(tmp_path / "tiny.onnx")
    x = RNG.normal(size=(250, 4)).astype(np.float32)  # 15 batches of 16 and 10 left over
    assert len(BatchReader("x", x)) == 15
    out = quantize(model, tmp_path / f"{method}.onnx", method, x)
    assert out.is_file()
    assert len(BatchReader("x", x[:5])) == 1, "fewer windows than one batch: they are the batch"


def test_a_model_never_answers_a_class_it_never_learnt_in_fp32_or_int8(tmp_path: Path) -> None:
    # stress data has calm and angry windows only: on windows unlike any it learnt from, the model must
    # still answer one of those, and quantization must keep it so
    from mmer_core.preprocess import preprocess_batch
    from mmer_core.synthetic import make_windows
    from trainer.export import export_onnx
    from trainer.models import build_model, fit

    data = make_windows("hr", 12, 240, seed=11)
    x, y = preprocess_batch("hr", data.windows), data.labels
    learnt = np.unique(y)[:2]
    keep = np.isin(y, learnt)
    x, y = x[keep], y[keep]
    model = build_model("hr", 4, x, seed=1)
    fit(model, x, y, None, None, epochs=3, seed=1, log=lambda _: None)
    fp32 = export_onnx(model, tmp_path / "hr.onnx", "hrv", x[:64])
    rng = np.random.default_rng(0)
    unusual = np.concatenate([x, x * rng.uniform(-20, 20, x.shape), rng.normal(0, 100, x.shape)]).astype(
        np.float32
    )
    for path in [fp32, *(quantize(fp32, tmp_path / f"{m}.onnx", m, x[:64]) for m in METHODS)]:
        sess = ort.InferenceSession(str(path))
        probs = sess.run(["probs"], {"hrv": unusual})[0]
        assert set(np.unique(probs.argmax(axis=1))) <= set(learnt.tolist()), path.name
        assert probs[:, np.setdiff1d(np.arange(4), learnt)].max() < 1e-6, path.name
