"""Import TensorFlow/Keras lazily and quietly, with bounded threads (shared 2-core machines)."""

from __future__ import annotations

import os
from types import ModuleType

_THREADS = int(os.environ.get("MMER_TF_THREADS", "2"))


def keras_module() -> ModuleType:
    """Return keras after configuring TensorFlow once; only trainer code that trains or exports calls this."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if not getattr(keras_module, "_configured", False):
        try:
            tf.config.threading.set_intra_op_parallelism_threads(_THREADS)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # already initialised by an earlier import; keep its settings
        keras_module._configured = True  # type: ignore[attr-defined]
    import keras

    return keras
