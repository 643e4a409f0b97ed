"""Import TensorFlow quietly, seeded, with thread counts that leave the machine usable."""

from __future__ import annotations

import os
import random
from types import ModuleType

from trainer.quiet import silence_tool_loggers


def import_tf(seed: int | None = None, threads: int | None = None) -> ModuleType:
    """TensorFlow, imported on first use only: the trainer's other steps and the edge never pay for it.
    Intra-op threads: `threads`, else $TF_NUM_INTRAOP_THREADS (a single-threaded worker sets it), else 2."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    silence_tool_loggers()
    import tensorflow as tf

    if not getattr(import_tf, "_threads_set", False):
        try:
            tf.config.threading.set_intra_op_parallelism_threads(
                threads or int(os.environ.get("TF_NUM_INTRAOP_THREADS", "2"))
            )
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # already initialised by an earlier call in this process
        import_tf._threads_set = True  # type: ignore[attr-defined]
    if seed is not None:
        random.seed(seed)
        import keras

        keras.utils.set_random_seed(seed)
    return tf
