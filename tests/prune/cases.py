"""The inputs both sides of the identity tests share: weights with ties, zeros and -0.0, data, initial weights.

Pure numpy and the standard library, so the test process imports neither Keras: each side runs in a
subprocess of its own (tfmot on tf-keras with TF_USE_LEGACY_KERAS=1; the engine with KERAS_BACKEND set).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from harness.sides import finish_side, load_arrays, start_side

SPARSITIES = (0.0, 0.1, 0.3, 0.5, 0.77, 0.9, 0.99)  # 0.1: the k-th largest |w| is 0 here


def tied_weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Weights on a coarse grid (many exact ties), with zeros and negative zeros among them."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=shape) * 3) / 4
    values = values.astype(np.float32)
    flat = values.reshape(-1)
    flat[rng.choice(flat.size, size=max(flat.size // 10, 1), replace=False)] = -0.0
    return values


def mask_cases() -> list[dict]:
    """(weights name, structure, sparsity) for every structure tfmot has, at several sparsities."""
    cases: list[dict] = []
    for name in ("dense", "conv", "wide"):
        for sparsity in SPARSITIES:
            cases.append({"weights": name, "structure": {"kind": "unstructured"}, "sparsity": sparsity})
    # Block sizes that divide the kernel, and ones that leave edge blocks (TF's SAME padding puts cells before).
    for block, pooling in (((1, 4), "AVG"), ((2, 3), "MAX"), ((4, 4), "AVG"), ((3, 2), "AVG"), ((5, 3), "MAX")):
        for sparsity in (0.3, 0.5, 0.9):
            structure = {"kind": "block", "block_size": list(block), "block_pooling_type": pooling}
            cases.append({"weights": "dense", "structure": structure, "sparsity": sparsity})
    for name in ("dense", "conv", "wide"):
        for m, n in ((2, 4), (1, 3), (3, 8)):
            cases.append({"weights": name, "structure": {"kind": "m_by_n", "m": m, "n": n}, "sparsity": m / n})
    return cases


def mask_weights() -> dict[str, np.ndarray]:
    return {
        "dense": tied_weights((13, 11), seed=1),  # odd sizes: edge blocks and a partial m-by-n group
        "conv": tied_weights((3, 3, 6, 5), seed=2),
        "wide": tied_weights((7, 40), seed=3),
    }


# The tiny model both sides build: Conv2D(4, 3) on 8x8x1, Flatten, Dense(16, relu), Dense(10) logits.
MODEL_SHAPES = {
    "conv2d/kernel": (3, 3, 1, 4),
    "conv2d/bias": (4,),
    "dense/kernel": (144, 16),
    "dense/bias": (16,),
    "dense_1/kernel": (16, 10),
    "dense_1/bias": (10,),
}
EXAMPLES, BATCH_SIZE, EPOCHS = 256, 32, 2  # 8 steps an epoch, 16 in all


def training_cases() -> list[dict[str, object]]:
    """Two epochs each: SGD and Adam, constant and polynomial; block and 2:4 once each."""
    constant = {"kind": "constant", "target_sparsity": 0.5, "begin_step": 0, "end_step": -1, "frequency": 3}
    polynomial = {
        "kind": "polynomial", "initial_sparsity": 0.0, "final_sparsity": 0.8, "power": 3,
        "begin_step": 2, "end_step": 14, "frequency": 2,
    }  # fmt: skip
    unstructured = {"kind": "unstructured"}
    cases: list[dict[str, object]] = [
        {"name": f"{optimizer}-{schedule['kind']}", "optimizer": optimizer, "schedule": schedule,
         "structure": unstructured, "layer_types": None}
        for optimizer in ("sgd", "adam")
        for schedule in (constant, polynomial)
    ]  # fmt: skip
    block: dict[str, object] = {"kind": "block", "block_size": [1, 4], "block_pooling_type": "AVG"}
    cases.append({"name": "adam-polynomial-block", "optimizer": "adam", "schedule": polynomial,
                  "structure": block, "layer_types": ["Dense"]})  # fmt: skip
    cases.append({"name": "sgd-constant-2of4", "optimizer": "sgd", "schedule": constant,
                  "structure": {"kind": "m_by_n", "m": 2, "n": 4}, "layer_types": None})  # fmt: skip
    return cases


def training_data() -> dict[str, np.ndarray]:
    """The first examples of scikit-learn's digits, in [0, 1], and initial weights drawn once."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    arrays = {
        "x": (digits.images[:EXAMPLES] / 16.0).astype(np.float32)[..., np.newaxis],
        "y": digits.target[:EXAMPLES].astype(np.int64),
        "x_val": (digits.images[EXAMPLES : EXAMPLES + 64] / 16.0).astype(np.float32)[..., np.newaxis],
        "y_val": digits.target[EXAMPLES : EXAMPLES + 64].astype(np.int64),
    }
    for name, shape in MODEL_SHAPES.items():
        limit = np.sqrt(6.0 / (shape[-2] + shape[-1])) if len(shape) > 1 else 0.1
        arrays[f"init/{name}"] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
    return arrays


def write_inputs(folder: Path) -> Path:
    """Every case and array, in `folder` (cases.json, arrays.npz)."""
    arrays = {f"weights/{name}": value for name, value in mask_weights().items()} | training_data()
    np.savez(folder / "arrays.npz", **arrays)  # type: ignore[arg-type]
    (folder / "cases.json").write_text(json.dumps({"masks": mask_cases(), "training": training_cases()}))
    return folder


def run_side(module: str, command: str, folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `python -m tests.prune.<module> <command> <folder>` with `env` on top of a clean environment."""
    return start_side(f"tests.prune.{module}", [command, str(folder)], env)


def finish(process: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for a side; its output, or the test fails with it."""
    return finish_side(process, timeout)


load = load_arrays
