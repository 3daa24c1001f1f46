"""Sparse TFLite: weights stored sparse, checked against the dense file, timed with XNNPACK on and off.

XNNPACK's sparse inference (the "Sparse Inference" section of TensorFlow Lite's XNNPACK delegate README,
from the Fast Sparse ConvNets paper) runs only a subgraph that stores its weights sparse (DENSIFY
operators), starts with a 3x3 stride-2 CONV_2D with padding 1 and 3 input channels (where NHWC turns
NCHW), contains 1x1 CONV_2D without padding (at least 2/3 of their weights zero), 3x3/5x5 depthwise
convolutions, elementwise operators, and ends with a spatial MEAN or DEPTH_TO_SPACE. `qualification`
says which of these a model misses, so a user learns what to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prunelab.worker.training import export_tflite
from prunelab.worker.training.tf import keras

XNNPACK_DOC = "tensorflow/lite/delegates/xnnpack/README.md#sparse-inference"
SPARSE_1X1_SHARE = 2 / 3
# Inputs compared between the sparse and the dense file.
AGREEMENT_EXAMPLES = 100


def _conv_options(layer: keras.layers.Layer) -> dict[str, Any]:
    config = layer.get_config()
    return {
        "kernel": tuple(config.get("kernel_size", ())),
        "strides": tuple(config.get("strides", ())),
        "padding": config.get("padding"),
        "dilation": tuple(config.get("dilation_rate", (1, 1))),
    }


def qualification(model: keras.Model) -> dict[str, Any]:
    """Whether the model has a subgraph XNNPACK's sparse inference can run, and if not, each reason why."""
    reasons = []
    convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    first = convolutions[0] if convolutions else None
    if first is None:
        reasons.append("no CONV_2D: the sparse subgraph starts with a 3x3 stride-2 convolution")
    else:
        options = _conv_options(first)
        channels = int(first.input_shape[-1])
        if (options["kernel"], options["strides"], options["padding"], channels) != ((3, 3), (2, 2), "same", 3):
            reasons.append(
                f"the first convolution ({first.name}: kernel {options['kernel']}, strides {options['strides']}, "
                f"padding {options['padding']}, {channels} input channels) is not the 3x3 stride-2 'same' "
                "convolution on 3 input channels where the sparse (NCHW) subgraph starts"
            )
    pointwise = [layer for layer in convolutions if _conv_options(layer)["kernel"] == (1, 1)]
    if not pointwise:
        reasons.append("no 1x1 CONV_2D: sparse inference speeds up only 1x1 convolutions")
    else:
        weights = np.concatenate([layer.kernel.numpy().ravel() for layer in pointwise])
        zero_share = 1.0 - np.count_nonzero(weights) / weights.size
        if zero_share < SPARSE_1X1_SHARE:
            reasons.append(
                f"1x1 convolutions are {zero_share:.1%} zero; sparse inference needs at least 2/3 of their weights zero"
            )
    ends = {type(layer).__name__ for layer in model.layers}
    if not ends & {"GlobalAveragePooling2D"}:
        reasons.append("no spatial MEAN (GlobalAveragePooling2D) or DEPTH_TO_SPACE for the sparse subgraph to end at")
    notes = []
    outside = sorted(ends & {"Dense", "Flatten", "MaxPooling2D"})
    if outside:
        notes.append(
            f"{', '.join(outside)} run outside any sparse subgraph (FULLY_CONNECTED, RESHAPE and MAX_POOL_2D are not "
            "among its operators): their zeros shrink the file, not the latency"
        )
    return {"qualifies": not reasons, "reasons": reasons, "notes": notes, "source": XNNPACK_DOC}


def op_names(path: Path) -> list[str]:
    """The operators of a TFLite file, in execution order."""
    loaded = export_tflite.interpreter(path, xnnpack=False)
    return [op["op_name"] for op in loaded._get_ops_details()]  # TFLite lists its operators only here


def measure(dense_path: Path, sparse_path: Path, images: np.ndarray) -> dict[str, Any]:
    """The sparse file against the dense one: loads, predicts the same, sizes, DENSIFY ops, latency on/off XNNPACK."""
    sample = images[:AGREEMENT_EXAMPLES]
    dense_out = export_tflite.predict(dense_path, sample)
    sparse_out = export_tflite.predict(sparse_path, sample)
    figures: dict[str, Any] = {
        "max_abs_difference": float(np.max(np.abs(dense_out - sparse_out))),
        "same_predictions": bool(np.array_equal(dense_out.argmax(axis=1), sparse_out.argmax(axis=1))),
        "densify_ops": op_names(sparse_path).count("DENSIFY"),
    }
    for name, path in (("dense", dense_path), ("sparse", sparse_path)):
        for xnnpack in (True, False):
            key = f"{name}_latency_ms_xnnpack_{'on' if xnnpack else 'off'}"
            figures[key] = export_tflite.latency_ms(path, images, xnnpack=xnnpack)
    return figures
