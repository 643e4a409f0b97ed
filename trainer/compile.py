"""The "compiled" artefact: the ORT-format model that minimal edge runtimes load without an ONNX parser."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

from trainer.quiet import quiet


def to_ort_format(onnx_path: Path, out_path: Path) -> Path:
    """Convert with onnxruntime's own tool (fixed optimisations, so any build of the runtime can load it)."""
    with tempfile.TemporaryDirectory(prefix="mmer-ort-") as tmp:
        src = Path(tmp) / "in" / onnx_path.name
        src.parent.mkdir()
        shutil.copy(onnx_path, src)
        with quiet("ort format"):
            convert_onnx_models_to_ort(
                src, output_dir=Path(tmp) / "out", optimization_styles=[OptimizationStyle.Fixed]
            )
        produced = next((Path(tmp) / "out").glob("*.ort"))
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(produced, out_path)
    return out_path
