"""Max-Percentile clipping ranges as an onnxruntime calibrator.

Per calibration batch we record each tensor's max |activation| (onnxruntime's ReduceMin/ReduceMax
augmentation of MinMaxCalibrater gives us both extremes per batch); the range's upper bound is the p-th
percentile of those per-batch maxima across batches. The lower bound keeps the tensor's sign: a tensor never
negative over calibration gets 0 (so a Relu folded into the QDQ graph stays a Relu), otherwise it is the
negated upper bound. The result is a ``TensorsData`` that onnxruntime's QDQ quantizer consumes directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from onnxruntime.quantization.calibrate import (
    CalibrationDataReader,
    CalibrationMethod,
    MinMaxCalibrater,
    TensorData,
    TensorsData,
)

DEFAULT_PERCENTILE = 99.999


def max_percentile_range(
    batch_mins: np.ndarray, batch_maxs: np.ndarray, percentile: float
) -> tuple[float, float]:
    """Range of one tensor from its per-batch minima and maxima (the method's definition, in one place)."""
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"max-percentile: percentile must be in (0, 100], got {percentile}")
    mins = np.asarray(batch_mins, dtype=np.float64).ravel()
    maxs = np.asarray(batch_maxs, dtype=np.float64).ravel()
    if mins.size == 0 or mins.size != maxs.size:
        raise ValueError(
            f"max-percentile: need equal, non-empty per-batch minima/maxima ({mins.size}/{maxs.size})"
        )
    per_batch_absmax = np.maximum(np.abs(mins), np.abs(maxs))
    high = float(np.percentile(per_batch_absmax, percentile))
    low = -high if float(np.min(mins)) < 0.0 else 0.0
    return low, high


class MaxPercentileCalibrater(MinMaxCalibrater):
    """MinMaxCalibrater's graph augmentation, with per-batch extremes kept and reduced by percentile."""

    def __init__(
        self,
        model_path: str | Path,
        op_types_to_calibrate: Sequence[str] | None = None,
        augmented_model_path: str = "augmented_model.onnx",
        percentile: float = DEFAULT_PERCENTILE,
        use_external_data_format: bool = False,
    ) -> None:
        super().__init__(
            model_path,
            op_types_to_calibrate=op_types_to_calibrate,
            augmented_model_path=augmented_model_path,
            symmetric=False,
            use_external_data_format=use_external_data_format,
        )
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"max-percentile: percentile must be in (0, 100], got {percentile}")
        self.percentile = percentile
        self.batch_extremes: dict[str, list[tuple[float, float]]] = {}

    def collect_data(self, data_reader: CalibrationDataReader) -> None:
        """Run each batch through the augmented model and keep (min, max) of every calibrated tensor."""
        outputs = [o.name for o in self.infer_session.get_outputs()]
        added = outputs[self.num_model_outputs :]
        batches = 0
        while True:
            inputs = data_reader.get_next()
            if not inputs:
                break
            values = dict(zip(outputs, self.infer_session.run(None, inputs), strict=True))
            for i in range(0, len(added), 2):
                name = added[i].rpartition("_")[0]
                low = float(np.min(values[added[i]]))
                high = float(np.max(values[added[i + 1]]))
                self.batch_extremes.setdefault(name, []).append((low, high))
            batches += 1
        if batches == 0 and not self.batch_extremes:
            raise ValueError("max-percentile: the calibration reader yielded no batches")

    def compute_data(self) -> TensorsData:
        """One (low, high) range per tensor, as TensorsData for the QDQ quantizer."""
        if not self.batch_extremes:
            raise ValueError("max-percentile: no calibration data collected")
        ranges = {}
        for name, pairs in self.batch_extremes.items():
            arr = np.asarray(pairs, dtype=np.float64)
            low, high = max_percentile_range(arr[:, 0], arr[:, 1], self.percentile)
            ranges[name] = TensorData(
                lowest=np.array(low, dtype=np.float32), highest=np.array(high, dtype=np.float32)
            )
        self.calibrate_tensors_range = TensorsData(CalibrationMethod.MinMax, ranges)
        return self.calibrate_tensors_range


def create_max_percentile_calibrator(
    model_path: str | Path,
    augmented_model_path: str,
    percentile: float = DEFAULT_PERCENTILE,
    op_types_to_calibrate: Sequence[str] | None = None,
) -> MaxPercentileCalibrater:
    """Counterpart of onnxruntime's ``create_calibrator``: augment the graph and open the session."""
    calibrator = MaxPercentileCalibrater(
        model_path, op_types_to_calibrate, augmented_model_path=augmented_model_path, percentile=percentile
    )
    calibrator.augment_graph()
    calibrator.create_inference_session()
    return calibrator
