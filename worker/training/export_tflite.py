"""TFLite exports of a stripped model: float, int8 (dynamic range or full integer), their weights and latency.

Pruning and quantization compound as tfmot's "Prune and quantize" guide shows: the
stripped (zeros in place) model is converted with `Optimize.DEFAULT`; zeros stay zero
because TFLite quantizes weights symmetrically.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from prunelab.worker.training.tf import keras, tf

# Latency: batch-1 inference on the first LATENCY_EXAMPLES test images, LATENCY_REPEATS passes, median pass.
LATENCY_EXAMPLES = 100
LATENCY_REPEATS = 5
# Training images that calibrate full-integer quantization.
CALIBRATION_EXAMPLES = 100
# The interpreter without its default delegate (XNNPACK): TFLite's built-in kernels only.
NO_DEFAULT_DELEGATES = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


def convert(
    model: keras.Model,
    *,
    int8: str | None = None,
    calibration: np.ndarray | None = None,
    calibration_examples: int = CALIBRATION_EXAMPLES,
    sparse: bool = False,
) -> bytes:
    """The model as a TFLite flatbuffer: float, or int8 ('dynamic_range' or 'full_integer').

    `sparse` (float only) stores sparse weight tensors sparse, with DENSIFY ops (`Optimize.EXPERIMENTAL_SPARSITY`).
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8 is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if sparse:
        if int8 is not None:
            raise ValueError("sparse storage is for the float model; int8 kernels are converted without it")
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    if int8 == "full_integer":
        if calibration is None:
            raise ValueError("full_integer quantization needs calibration images")

        def representative() -> Iterator[list[np.ndarray]]:
            for image in calibration[:calibration_examples]:
                yield [image[np.newaxis].astype(np.float32)]

        converter.representative_dataset = representative
        # Every op in int8; input and output stay float32 so the file is a drop-in for the float one.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def write_tflite(model: keras.Model, path: Path, **options: object) -> Path:
    path.write_bytes(convert(model, **options))  # type: ignore[arg-type]
    return path


def interpreter(path: Path, *, xnnpack: bool = True) -> tf.lite.Interpreter:
    """A single-threaded interpreter for the file, tensors allocated; `xnnpack=False` runs TFLite's own kernels."""
    options = {} if xnnpack else {"experimental_op_resolver_type": NO_DEFAULT_DELEGATES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice, once per call
        loaded = tf.lite.Interpreter(model_path=str(path), num_threads=1, **options)
    loaded.allocate_tensors()
    return loaded


def predict(path: Path, images: np.ndarray, *, xnnpack: bool = True) -> np.ndarray:
    """Outputs of the TFLite model for each image, one invoke per image."""
    loaded = interpreter(path, xnnpack=xnnpack)
    input_index = loaded.get_input_details()[0]["index"]
    output_index = loaded.get_output_details()[0]["index"]
    outputs = []
    for image in images:
        loaded.set_tensor(input_index, image[np.newaxis].astype(np.float32))
        loaded.invoke()
        outputs.append(loaded.get_tensor(output_index)[0].copy())
    return np.stack(outputs)


def latency_ms(path: Path, images: np.ndarray, repeats: int = LATENCY_REPEATS, *, xnnpack: bool = True) -> float:
    """Median over `repeats` passes of the mean single-threaded batch-1 latency, in milliseconds."""
    loaded = interpreter(path, xnnpack=xnnpack)
    input_index = loaded.get_input_details()[0]["index"]
    batch = [image[np.newaxis].astype(np.float32) for image in images[:LATENCY_EXAMPLES]]
    loaded.set_tensor(input_index, batch[0])
    loaded.invoke()  # warm-up: the first invoke prepares kernels
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for image in batch:
            loaded.set_tensor(input_index, image)
            loaded.invoke()
        passes.append((time.perf_counter() - started) * 1000 / len(batch))
    return statistics.median(passes)


def constant_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every constant (weight) tensor of the flatbuffer with at least two dimensions, by tensor name."""
    loaded = interpreter(path)
    tensors = {}
    for detail in loaded.get_tensor_details():
        if len(detail["shape"]) < 2:
            continue
        try:
            tensors[detail["name"]] = loaded.get_tensor(detail["index"]).copy()
        except ValueError:
            continue  # an activation: no data outside of invoke
    return tensors


def layer_weight_tensor(tensors: dict[str, np.ndarray], model_name: str, layer_name: str, size: int) -> np.ndarray:
    """The TFLite tensor holding a layer's kernel: named after the layer, with the kernel's element count."""
    marker = f"{model_name}/{layer_name}/"
    matches = [value for name, value in tensors.items() if marker in name and value.size == size]
    if len(matches) != 1:
        raise LookupError(f"expected one {size}-element TFLite tensor for layer {layer_name!r}, found {len(matches)}")
    return matches[0]
