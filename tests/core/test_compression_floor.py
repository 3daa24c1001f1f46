"""The information floor, checked against figures worked out by hand."""

from __future__ import annotations

import math

import numpy as np

from prunelab.core.compression import floor_for, information_floor, kernel_floor_bits, mask_entropy_bits, shared_values


def test_mask_entropy_of_an_eighth_kept() -> None:
    # H(0.125) = 0.5436 bits per position.
    assert math.isclose(mask_entropy_bits(8000, 1000), 8000 * 0.543564443199596, rel_tol=1e-12)
    assert mask_entropy_bits(10, 0) == mask_entropy_bits(10, 10) == 0.0


def test_floors_of_a_kernel() -> None:
    kernel = np.zeros(1024, dtype=np.float32)
    kernel[:128] = np.tile(np.array([0.5, -0.25, 0.125, 1.0], dtype=np.float32), 32)
    mask = mask_entropy_bits(1024, 128)
    assert shared_values(kernel) == 4
    assert kernel_floor_bits(kernel, 32) == mask + 128 * 32
    assert kernel_floor_bits(kernel, 8) == mask + 128 * 8
    assert kernel_floor_bits(kernel, 32, shared=True) == mask + 128 * 2 + 4 * 32
    floors = information_floor({"dense": kernel}, other_params=10)
    assert floors["float32"] == math.ceil((320 + mask + 128 * 32) / 8)
    assert floors["shared_int8"] == math.ceil((320 + mask + 128 * 2 + 4 * 8) / 8)
    assert floors["shared_int8"] < floors["int8"] < floors["float32"]


def test_the_issue_figures_for_the_seeds_cnn() -> None:
    # 87.5% of the 428,672 kernel weights pruned, 2,570 biases... float32 ~245 KB, int8 ~83 KB, 16 shared ~56 KB.
    rng = np.random.default_rng(0)
    sizes = {"conv1": 288, "conv2": 18432, "dense": 409600, "logits": 2560}
    kernels = {}
    for name, size in sizes.items():
        kernel = np.zeros(size, dtype=np.float32)
        kept = rng.choice(size, size // 8, replace=False)
        kernel[kept] = rng.choice(np.linspace(-1, 1, 16, dtype=np.float32), kept.size)
        kernels[name] = kernel
    floors = information_floor(kernels, other_params=32 + 64 + 256 + 10)
    assert 240_000 < floors["float32"] < 250_000
    assert 78_000 < floors["int8"] < 86_000
    assert 50_000 < floors["shared_float32"] < 60_000


def test_each_stage_is_measured_against_its_own_precision() -> None:
    assert floor_for("pruned", clustered=False) == "float32"
    assert floor_for("cluster", clustered=True) == "shared_float32"
    assert floor_for("tflite_int8", clustered=True) == "shared_int8"
    assert floor_for("qat", clustered=False) == "int8"
