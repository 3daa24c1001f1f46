"""How small a compressed model can be: the information floor of its weights, computed from the weights themselves.

A pruned kernel is a mask and the values it keeps. Storing it takes at least the mask's entropy
(n * H(kept / n) bits, an ideal entropy coder of the zero positions) plus the kept values: 32 bits each
in float32, 8 in int8, or log2(k) bits each plus a k-entry codebook when the layer shares k values
(weight clustering). Every other parameter (biases; int8 biases are int32) costs 32 bits. A stage's
file divided by its floor says how far the file format is from the limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

FLOAT_BITS = 32
INT8_BITS = 8


def mask_entropy_bits(size: int, kept: int) -> float:
    """Bits to code which `kept` of `size` positions are non-zero, at the empirical rate: size * H(kept / size)."""
    if size <= 0 or kept in (0, size):
        return 0.0
    p = kept / size
    return size * -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def shared_values(kernel: np.ndarray) -> int:
    """Distinct non-zero values of a kernel (the zero is the mask's business)."""
    return int(np.unique(kernel[kernel != 0]).size)


def kernel_floor_bits(kernel: np.ndarray, value_bits: float, *, shared: bool = False) -> float:
    """Mask entropy plus the kept values at `value_bits` each; with `shared`, log2(k) bits each plus a codebook."""
    kept = int(np.count_nonzero(kernel))
    mask = mask_entropy_bits(kernel.size, kept)
    if not shared:
        return mask + kept * value_bits
    k = shared_values(kernel)
    return mask + kept * (math.log2(k) if k > 1 else 0.0) + k * value_bits


def information_floor(kernels: Mapping[str, np.ndarray], other_params: int) -> dict[str, int]:
    """Floor in bytes of a model whose pruned kernels are `kernels` and which has `other_params` more weights.

    float32 and int8: every kept value stored; shared_float32 / shared_int8: each layer's k distinct values
    in a codebook of that precision and log2(k) bits per kept weight.
    """
    others = other_params * FLOAT_BITS
    variants = {
        "float32": (FLOAT_BITS, False),
        "int8": (INT8_BITS, False),
        "shared_float32": (FLOAT_BITS, True),
        "shared_int8": (INT8_BITS, True),
    }
    return {
        name: math.ceil((others + sum(kernel_floor_bits(k, bits, shared=shared) for k in kernels.values())) / 8)
        for name, (bits, shared) in variants.items()
    }


def floor_for(stage_kind: str, clustered: bool) -> str:
    """The floor variant a stage's file is measured against: its value precision, shared when clustered."""
    precision = "int8" if stage_kind in ("qat", "tflite_int8", "pruned_int8") else "float32"
    return f"shared_{precision}" if clustered else precision
