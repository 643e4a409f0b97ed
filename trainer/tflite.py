"""The peer baseline: TensorFlow Lite full-integer INT8 of the same Keras model, run by LiteRT.

TFLite gets the network after the standardisation layer and standardised
inputs: full-integer inputs quantize one tensor with one scale, which would
wreck raw features of mixed units and make the comparison unfair to TFLite.
"""

from __future__ import annotations

import time

import numpy as np

from trainer.evaluate import Evaluation, from_probs
from trainer.quiet import quiet
from trainer.tf_setup import import_tf


def has_peer(model) -> bool:
    """Whether the model starts with one standardisation layer that the peer can take off. A model that
    standardises inside its branches (the gated speech model) has no fair full-integer TFLite peer: its raw
    input would share one int8 scale."""
    return any(layer.name == "standardise" for layer in model.layers)


def _without_standardise(model):
    import keras

    layer = model.get_layer("standardise")
    inner = keras.Input(shape=model.input_shape[1:], name="standardised")
    x = inner
    seen = False
    for lyr in model.layers:
        if lyr is layer:
            seen = True
            continue
        if seen:
            x = lyr(x)
    return keras.Model(inner, x), layer


def evaluate_tflite(model, x_calib: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, k: int) -> Evaluation:
    """Convert to full-integer INT8 (int8 in and out) and evaluate with the LiteRT interpreter."""
    tf = import_tf()
    from ai_edge_litert.interpreter import Interpreter

    body, standardise = _without_standardise(model)
    xs_calib = np.asarray(standardise(x_calib), dtype=np.float32)
    xs_test = np.asarray(standardise(x_test), dtype=np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(body)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([xs_calib[i : i + 1]] for i in range(min(len(xs_calib), 256)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with quiet("tflite convert"):
        flat = converter.convert()
        interp = Interpreter(model_content=flat, num_threads=1)
        interp.allocate_tensors()
        interp.invoke()  # the first call creates the XNNPACK delegate, which announces itself
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]

    def run(sample: np.ndarray) -> np.ndarray:
        q = np.clip(np.round(sample / in_scale + in_zero), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        return (interp.get_tensor(out["index"]).astype(np.float32) - out_zero) * out_scale

    probs, latencies = [], []
    cpu0 = time.process_time()
    for i in range(len(xs_test)):
        t0 = time.perf_counter()
        probs.append(run(xs_test[i : i + 1])[0])
        latencies.append((time.perf_counter() - t0) * 1000)
    cpu_ms = (time.process_time() - cpu0) * 1000 / len(xs_test) * 1000
    return from_probs(np.stack(probs), y_test, k, len(flat), np.asarray(latencies), cpu_ms)
