"""Static INT8 quantization (QDQ, per-channel weights) with four clipping-range methods."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)
from onnxruntime.quantization.calibrate import save_tensors_data

from trainer.calibration import DEFAULT_PERCENTILE, create_max_percentile_calibrator

METHODS = ("max", "percentile", "max-percentile", "entropy")
_ORT_METHOD = {
    "max": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}


@dataclass(frozen=True)
class QuantConfig:
    method: str = "max-percentile"
    percentile: float = DEFAULT_PERCENTILE
    calibration_windows: int = 512
    batch_size: int = 16
    per_channel: bool = True


class ArrayReader(CalibrationDataReader):
    """Feeds calibration windows in fixed-size batches; Max-Percentile's statistic is per batch."""

    def __init__(self, input_name: str, x: np.ndarray, batch_size: int) -> None:
        if len(x) == 0:
            raise ValueError("quantize: no calibration windows")
        self.input_name = input_name
        self.batches = [x[i : i + batch_size].astype(np.float32) for i in range(0, len(x), batch_size)]
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.batches):
            return None
        batch = self.batches[self.position]
        self.position += 1
        return {self.input_name: batch}

    def rewind(self) -> None:
        self.position = 0


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path)).graph.input[0].name


def quantize_model(
    fp32_path: str | Path, out_path: str | Path, calib_x: np.ndarray, config: QuantConfig = QuantConfig()
) -> Path:
    """Pre-process (shape inference, fusion), calibrate with ``config.method`` and write a QDQ INT8 model."""
    if config.method not in METHODS:
        raise ValueError(f"quantize: unknown method {config.method!r}; expected one of {METHODS}")
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    calib_x = calib_x[: config.calibration_windows]
    name = _input_name(fp32_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmer-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Symbolic shape inference needs sympy (not a trainer dependency); ONNX shape inference suffices here.
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        extra = {"CalibPercentile": config.percentile} if config.method == "percentile" else {}
        common = dict(
            quant_format=QuantFormat.QDQ,
            per_channel=config.per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
        if config.method == "max-percentile":
            calibrator = create_max_percentile_calibrator(
                pre, str(Path(tmp) / "augmented.onnx"), percentile=config.percentile
            )
            calibrator.collect_data(ArrayReader(name, calib_x, config.batch_size))
            cache = Path(tmp) / "ranges.json"
            save_tensors_data(calibrator.compute_data(), cache)
            quantize_static(
                str(pre),
                str(out_path),
                None,
                calibrate_method=CalibrationMethod.MinMax,
                calibration_cache_path=cache,
                **common,
            )
        else:
            quantize_static(
                str(pre),
                str(out_path),
                ArrayReader(name, calib_x, config.batch_size),
                calibrate_method=_ORT_METHOD[config.method],
                extra_options=extra,
                **common,
            )
    return out_path
