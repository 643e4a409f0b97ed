"""Max-Percentile calibration: the clipping range no library ships, plugged into onnxruntime's calibration.

For every calibration batch, each tensor's largest magnitude is recorded; the
clipping threshold is the p-th percentile of those per-batch maxima, so a few
outlier batches cannot stretch the range (as with Max) while every batch's
typical peak still fits (unlike a percentile over all values). The lower bound
keeps the tensor's sign: a tensor that is never negative (after a Relu folded
into the quantized graph) gets 0, or the Relu's effect would be lost.

It reuses onnxruntime's MinMaxCalibrater for the graph augmentation and data
collection (ReduceMin/ReduceMax per tensor per batch) and only replaces how
the per-batch extremes become a range. The result is an ordinary TensorsData
that quantize_static accepts through its calibration cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization.calibrate import (
    CalibrationDataReader,
    CalibrationMethod,
    MinMaxCalibrater,
    TensorData,
    TensorsData,
)


class BatchReader(CalibrationDataReader):
    """Feeds calibration windows to onnxruntime in batches; each batch is one calibration step."""

    def __init__(self, input_name: str, x: np.ndarray, batch_size: int = 16) -> None:
        self.input_name = input_name
        # whole batches only (unless there are fewer windows than one batch): onnxruntime's histogram
        # calibrators (percentile, entropy) stack the batches and fail on a shorter last one
        usable = len(x) // batch_size * batch_size or len(x)
        self.batches = [x[i : i + batch_size].astype(np.float32) for i in range(0, usable, batch_size)]
        self._it: Iterator[np.ndarray] = iter(self.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._it = iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class MaxPercentileCalibrater(MinMaxCalibrater):
    """Per-batch max |activation|, then the p-th percentile across batches; sign-preserving lower bound."""

    def __init__(self, model_path: str | Path, percentile: float = 99.999, **kwargs) -> None:
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"max-percentile: percentile must be in (0, 100], got {percentile}")
        super().__init__(model_path, symmetric=False, moving_average=False, **kwargs)
        self.percentile = percentile
        self.batch_absmax: dict[str, list[float]] = {}
        self.global_min: dict[str, float] = {}
        self.global_max: dict[str, float] = {}

    def compute_data(self) -> TensorsData:
        """Fold the batches collected since the last call into the ranges, and return all ranges."""
        if self.intermediate_outputs:
            names = [o.name for o in self.infer_session.get_outputs()]
            added = names[self.num_model_outputs :]
            for outputs in self.intermediate_outputs:
                values = dict(zip(names, outputs, strict=False))
                for i in range(0, len(added), 2):
                    tensor = added[i].rpartition("_")[0]
                    lo = float(np.nanmin(values[added[i]]))
                    hi = float(np.nanmax(values[added[i + 1]]))
                    self.batch_absmax.setdefault(tensor, []).append(max(abs(lo), abs(hi)))
                    self.global_min[tensor] = min(self.global_min.get(tensor, lo), lo)
                    self.global_max[tensor] = max(self.global_max.get(tensor, hi), hi)
        if not self.batch_absmax:
            raise ValueError("max-percentile: no calibration data was collected")
        ranges = {}
        for tensor, maxima in self.batch_absmax.items():
            threshold = float(np.percentile(np.asarray(maxima), self.percentile))
            lower = -threshold if self.global_min[tensor] < 0 else 0.0
            upper = threshold if self.global_max[tensor] > 0 else 0.0
            ranges[tensor] = TensorData(lowest=np.float32(lower), highest=np.float32(upper))
        self.calibrate_tensors_range = TensorsData(CalibrationMethod.MinMax, ranges)
        return self.calibrate_tensors_range


def max_percentile_ranges(
    model_path: Path, reader: BatchReader, percentile: float, workdir: Path
) -> TensorsData:
    """Run the Max-Percentile calibrator over every batch of the reader."""
    calibrator = MaxPercentileCalibrater(
        model_path, percentile=percentile, augmented_model_path=str(workdir / "augmented.onnx")
    )
    calibrator.augment_graph()
    calibrator.create_inference_session()
    reader.rewind()
    calibrator.collect_data(reader)
    return calibrator.compute_data()
