"""The engine against tfmot: masks for every structure, and the weights after two epochs of training.

Each side runs in its own process (tfmot needs TF_USE_LEGACY_KERAS=1, Keras 3 picks its backend at
import), from the same inputs (tests.prune.cases), and writes its arrays to an .npz compared here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.sides import LEGACY_KERAS
from prunelab.core.schedule_math import kept_count
from tests.prune.cases import finish, load, run_side, write_inputs

LEGACY = LEGACY_KERAS


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_inputs(tmp_path_factory.mktemp("identity"))


@pytest.fixture(scope="module")
def masks(inputs: Path) -> dict[str, dict[str, np.ndarray]]:
    sides = [
        run_side("tfmot_side", "masks", inputs, LEGACY),
        run_side("engine_side", "masks", inputs, {"KERAS_BACKEND": "tensorflow"}),
        run_side("engine_side", "masks", inputs, {"KERAS_BACKEND": "jax"}),
    ]
    for side in sides:
        finish(side)
    return {
        name: load(inputs / f"{name}.npz") for name in ("tfmot_masks", "engine_masks_tensorflow", "engine_masks_jax")
    }


@pytest.fixture(scope="module")
def trained(inputs: Path) -> dict[str, dict[str, np.ndarray]]:
    sides = [
        run_side("tfmot_side", "train", inputs, LEGACY),
        run_side("engine_side", "train", inputs, {"KERAS_BACKEND": "tensorflow"}),
    ]
    for side in sides:
        finish(side)
    return {"tfmot": load(inputs / "tfmot_weights.npz"), "engine": load(inputs / "engine_weights_tensorflow.npz")}


def bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint32)


def test_the_mask_cases_have_ties_zeros_and_negative_zeros(inputs: Path, masks: dict) -> None:
    arrays, cases = load(inputs / "arrays.npz"), json.loads((inputs / "cases.json").read_text())["masks"]
    tied_at_threshold = 0
    for index, case in enumerate(cases):
        weights = arrays[f"weights/{case['weights']}"]
        if case["structure"]["kind"] == "unstructured" and case["sparsity"] > 0:
            magnitudes = np.sort(np.abs(weights).reshape(-1))[::-1]
            threshold = magnitudes[kept_count(weights.size, case["sparsity"]) - 1]
            tied_at_threshold += int(np.sum(magnitudes == threshold) > 1)
            assert masks["tfmot_masks"][str(index)].sum() >= kept_count(weights.size, case["sparsity"])
        assert np.any(np.signbit(weights) & (weights == 0)), case["weights"]
    assert tied_at_threshold >= 10  # ties at the k-th largest magnitude, where tfmot keeps them all
    # A threshold of 0 keeps every zero and -0.0: the first sparsities above 0 do that on these weights.
    assert any(masks["tfmot_masks"][str(index)].all() for index, case in enumerate(cases) if case["sparsity"] > 0)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_masks_are_tfmots_for_every_structure(inputs: Path, masks: dict, backend: str) -> None:
    cases = json.loads((inputs / "cases.json").read_text())["masks"]
    engine = masks[f"engine_masks_{backend}"]
    structures = set()
    for index, case in enumerate(cases):
        expected, got = masks["tfmot_masks"][str(index)], engine[str(index)]
        assert got.dtype == expected.dtype and got.shape == expected.shape, case
        assert np.array_equal(bits(got), bits(expected)), (case, int(np.sum(got != expected)))
        structures.add(case["structure"]["kind"])
    assert structures == {"unstructured", "block", "m_by_n"}


def test_final_weights_after_two_epochs_are_tfmots(inputs: Path, trained: dict) -> None:
    """Adam: every bit. SGD: every value, and every bit of every non-zero weight.

    tf-keras's SGD keeps a momentum slot even at momentum 0 and adds `m * 0` to each update, which
    turns a -0.0 weight whose gradient is exactly 0 into +0.0; Keras 3's SGD subtracts `g * lr` only.
    So with SGD a pruned weight may be -0.0 here and +0.0 in tfmot: the optimizers differ, not the pruning.
    """
    cases = json.loads((inputs / "cases.json").read_text())["training"]
    tfmot, engine = trained["tfmot"], trained["engine"]
    assert {key for key in tfmot} <= set(engine)
    for case in cases:
        keys = [key for key in tfmot if key.startswith(f"{case['name']}/")]
        assert len(keys) == 6, keys
        for key in keys:
            expected, got = tfmot[key], engine[key]
            if case["optimizer"] == "adam":
                assert np.array_equal(bits(got), bits(expected)), key
            else:
                assert np.array_equal(got, expected), key
                differ = bits(got) != bits(expected)
                assert np.all(got[differ] == 0) and np.all(expected[differ] == 0), key
        assert int(engine[f"{case['name']}/step"]) == 16
        kernels = [key for key in keys if key.endswith("kernel")]
        assert any(np.mean(tfmot[key] == 0) > 0.4 for key in kernels), case  # it did prune
