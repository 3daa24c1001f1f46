"""A layer's kernel read back from a TFLite file's tensors, in Keras's layout, to check what the file holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prunelab.worker.training import export_tflite


def to_keras_layout(tensor: np.ndarray, keras_shape: tuple[int, ...]) -> np.ndarray:
    """A kernel in Keras layout: TFLite stores Dense as (out, in), Conv2D as (out, h, w, in)."""
    if tensor.ndim == 2:
        converted = tensor.T
    elif tensor.ndim == 4:
        converted = tensor.transpose(1, 2, 3, 0)
    else:
        raise ValueError(f"no Keras layout for a {tensor.ndim}-d TFLite tensor")
    if converted.shape != tuple(keras_shape):
        raise LookupError(f"TFLite tensor {tensor.shape} is not a kernel of shape {keras_shape}")
    return converted


def kernel_tensors(path: Path, kernels: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Each named layer's kernel as the file stores it (int8 values in an int8 file), in Keras's layout.

    A layer's tensor is the constant named after the layer (`<model>/<layer>/...`, or `quant_<layer>` after
    quantization-aware training) with the kernel's element count.
    """
    tensors = export_tflite.constant_tensors(path)
    found = {}
    for layer, shape in kernels.items():
        size = int(np.prod(shape))
        markers = (f"/{layer}/", f"/quant_{layer}/")
        matches = [value for name, value in tensors.items() if any(m in name for m in markers) and value.size == size]
        if len(matches) != 1:
            raise LookupError(f"expected one {size}-element TFLite tensor for layer {layer!r}, found {len(matches)}")
        found[layer] = to_keras_layout(matches[0], shape)
    return found


def values_per_channel(kernel: np.ndarray) -> int:
    """The most distinct values in one output channel (the last axis): per-channel int8 scales make a shared
    float value one int8 value per channel, so this is what clustering bounds in an int8 file."""
    channels = kernel.reshape(-1, kernel.shape[-1])
    return max(int(np.unique(channels[:, c]).size) for c in range(channels.shape[1]))
