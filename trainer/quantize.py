"""Static INT8 quantization (QDQ, per-channel weights) with four clipping-range methods."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.calibrate import save_tensors_data
from onnxruntime.quantization.shape_inference import quant_pre_process

from trainer.calibration import BatchReader, max_percentile_ranges
from trainer.compact import compact
from trainer.quiet import quiet

METHODS = ("max", "percentile", "max-percentile", "entropy")
CALIBRATION_WINDOWS = 256  # rows a calibration reads, unless told otherwise
QUANTIZED_OPS = ["Conv", "Gemm", "MatMul", "MaxPool", "GlobalAveragePool", "Relu"]


def calibration_rows(x: np.ndarray, seed: int, count: int = CALIBRATION_WINDOWS) -> np.ndarray:
    """Up to `count` rows of x drawn at random with seed: what a calibration reads of a training set."""
    return x[np.random.default_rng(seed).permutation(len(x))[:count]]


def quantize(
    fp32_path: Path,
    out_path: Path,
    method: str,
    calibration: np.ndarray,
    percentile: float = 99.999,
    batch_size: int = 16,
    reduce_range: bool = True,
) -> Path:
    """Write an INT8 QDQ model calibrated on `calibration` windows with the given method, compacted.

    reduce_range keeps quantized weights to 7 bits: uint8 x int8 products of
    full-range operands overflow the int16 pair sums of x86 AVX2 kernels
    without VNNI (onnxruntime's QLinearConv/QGemm there), which cost speech
    3 pp while the QDQ graph itself was within 0.5 pp of fp32. Turn it off
    only for a target whose int8 kernels accumulate in 32 bits (VNNI, NPUs).
    """
    if method not in METHODS:
        raise ValueError(f"unknown quantization method {method!r} (known: {', '.join(METHODS)})")
    if len(calibration) == 0:
        raise ValueError("quantization needs at least one calibration window")
    if len(calibration) > batch_size:
        # whole batches only: the histogram calibrators (percentile, entropy) fail on a short last batch
        calibration = calibration[: len(calibration) // batch_size * batch_size]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmer-quant-") as tmp:
        work = Path(tmp)
        prepared = work / "prepared.onnx"
        with quiet("quantize pre-process"):
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(prepared)
        input_name = model.graph.input[0].name
        reader = BatchReader(input_name, calibration, batch_size)
        softmax = [n.name for n in model.graph.node if n.op_type == "Softmax"]
        options = {"ActivationSymmetric": False, "WeightSymmetric": True}
        kwargs = {
            "quant_format": QuantFormat.QDQ,
            "per_channel": True,
            "reduce_range": reduce_range,
            "activation_type": QuantType.QUInt8,
            "weight_type": QuantType.QInt8,
            "nodes_to_exclude": softmax,  # probabilities stay float: they must sum to 1
            # The weight-bearing ops. The input standardisation (Mul/Add by per-feature constants
            # spanning orders of magnitude) stays float: one int8 scale per tensor would erase it.
            "op_types_to_quantize": QUANTIZED_OPS,
        }
        with quiet(f"quantize {method}"):
            if method == "max-percentile":
                ranges = max_percentile_ranges(prepared, reader, percentile, work)
                cache = work / "ranges.json"
                save_tensors_data(ranges, cache)
                quantize_static(
                    str(prepared),
                    str(out_path),
                    None,
                    calibrate_method=CalibrationMethod.MinMax,
                    calibration_cache_path=str(cache),
                    extra_options=options,
                    **kwargs,
                )
            else:
                calib = {
                    "max": CalibrationMethod.MinMax,
                    "percentile": CalibrationMethod.Percentile,
                    "entropy": CalibrationMethod.Entropy,
                }[method]
                if method == "percentile":
                    options = {**options, "CalibPercentile": percentile}
                quantize_static(
                    str(prepared),
                    str(out_path),
                    reader,
                    calibrate_method=calib,
                    extra_options=options,
                    **kwargs,
                )
    compacted = compact(onnx.load(out_path))
    onnx.checker.check_model(compacted)
    onnx.save(compacted, out_path)
    return out_path
