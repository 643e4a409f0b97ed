"""How good and how costly a model is: accuracy, macro-F1, confusion, bytes, latency, CPU time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

# windows per run when scoring a test set: the face kernel model's intermediates grow with the batch times
# its support vectors times its components (trainer.face_kernel)
BATCH = 32


@dataclass
class Evaluation:
    """Figures of one model on one test set."""

    accuracy: float
    macro_f1: float
    confusion: list[list[int]]
    bytes: int
    latency_ms_p50: float
    latency_ms_p99: float
    cpu_ms_per_1000: float
    probs: np.ndarray = field(repr=False)

    def to_json(self) -> dict:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "confusion": self.confusion,
            "bytes": self.bytes,
            "latency_ms_p50": round(self.latency_ms_p50, 4),
            "latency_ms_p99": round(self.latency_ms_p99, 4),
            "cpu_ms_per_1000": round(self.cpu_ms_per_1000, 2),
        }


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """k x k counts, rows true class, columns predicted."""
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean of per-class F1 (classes absent from both truth and prediction skipped)."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    present = denom > 0
    return float(np.mean(2 * tp[present] / denom[present])) if present.any() else 0.0


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """A single-threaded CPU session, the edge's configuration."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def evaluate_onnx(path: Path, x: np.ndarray, y: np.ndarray, k: int, latency_runs: int = 200) -> Evaluation:
    """Score the test set in batches, then time batch-1 inference on its first windows."""
    sess = session(path)
    name = sess.get_inputs()[0].name
    probs = np.concatenate(
        [sess.run(["probs"], {name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
    )
    latencies = []
    cpu0 = time.process_time()
    for i in range(latency_runs):
        sample = x[i % len(x) : i % len(x) + 1]
        t0 = time.perf_counter()
        sess.run(["probs"], {name: sample})
        latencies.append((time.perf_counter() - t0) * 1000)
    cpu_ms = (time.process_time() - cpu0) * 1000 / latency_runs * 1000
    return from_probs(probs, y, k, path.stat().st_size, np.asarray(latencies), cpu_ms)


def from_probs(
    probs: np.ndarray, y: np.ndarray, k: int, size: int, latencies_ms: np.ndarray, cpu_ms_per_1000: float
) -> Evaluation:
    """Figures from a model's test-set probabilities and its measured latencies."""
    pred = probs.argmax(axis=1)
    cm = confusion(y, pred, k)
    return Evaluation(
        accuracy=float((pred == y).mean()),
        macro_f1=macro_f1(cm),
        confusion=cm.tolist(),
        bytes=int(size),
        latency_ms_p50=float(np.percentile(latencies_ms, 50)),
        latency_ms_p99=float(np.percentile(latencies_ms, 99)),
        cpu_ms_per_1000=float(cpu_ms_per_1000),
        probs=probs,
    )
