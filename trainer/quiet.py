"""Route the tools' chatter to the debug log, so the trainer's own progress lines stay readable.

TensorFlow, tf2onnx, the TFLite converter and onnxruntime's calibrators and
format converter print to stdout/stderr from Python (print, warnings, their
own log handlers) and from C++ ("fully_quantize: 0 ...", "Created TensorFlow
Lite XNNPACK delegate"), a dozen lines per model. Inside `quiet()` both file
descriptors point to a temporary file whose lines go to the `mmer.trainer.tools`
logger at DEBUG (`mmer trainer pipeline --verbose` shows them). When the step
fails, the captured text is written to stderr before the error propagates: it
is then the diagnosis, not noise. File descriptors are per process: steps
run in one thread, so nothing else's output is captured by mistake.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

LOG = logging.getLogger("mmer.trainer.tools")


def silence_tool_loggers() -> None:
    """Process-wide: known-harmless INFO/WARNING sources of TensorFlow, absl and onnxruntime go quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("tensorflow", "absl", "tf2onnx", "ort_format_model.utils", "onnxruntime"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)


@contextlib.contextmanager
def quiet(step: str) -> Iterator[None]:
    """Capture everything written to stdout/stderr (Python and native) during `step`; log it at DEBUG."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(AttributeError, ValueError):
            stream.flush()  # type: ignore[union-attr]
    python_out = io.StringIO()
    caught: list[warnings.WarningMessage] = []
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        failed = False
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with (
                warnings.catch_warnings(record=True) as record,
                contextlib.redirect_stdout(python_out),
                contextlib.redirect_stderr(python_out),
            ):
                warnings.simplefilter("always")
                try:
                    yield
                finally:
                    caught.extend(record)
        except BaseException:
            failed = True
            raise
        finally:
            for stream in (sys.__stdout__, sys.__stderr__):
                with contextlib.suppress(AttributeError, ValueError):
                    stream.flush()  # type: ignore[union-attr]
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = python_out.getvalue() + sink.read().decode("utf-8", "replace")
            text += "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
            _emit(step, text, failed)


def _emit(step: str, text: str, failed: bool) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    if failed and lines:
        print(f"[{step}] output of the failed step:", *lines, sep="\n", file=sys.stderr, flush=True)
    for line in lines:
        LOG.debug("[%s] %s", step, line)
