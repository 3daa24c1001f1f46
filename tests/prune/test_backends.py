"""The engine on the TensorFlow and JAX backends: trains, strips to the model's own variables, refuses
steps_per_execution > 1; and on TensorFlow, a run resumed from an epoch checkpoint ends bit for bit as a
straight one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prunelab.core import schedule_math
from prunelab.core.specs import PolynomialSchedule
from tests.prune.cases import finish, load, run_side, training_cases, write_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_inputs(tmp_path_factory.mktemp("backends"))


@pytest.fixture(scope="module")
def facts(inputs: Path) -> dict[str, dict]:
    sides = {
        backend: run_side("engine_side", "backend", inputs, {"KERAS_BACKEND": backend})
        for backend in ("tensorflow", "jax")
    }
    for side in sides.values():
        finish(side)
    return {backend: json.loads((inputs / f"engine_backend_{backend}.json").read_text()) for backend in sides}


def _layer_and_name(path: str) -> str:
    return "/".join(path.split("/")[-2:])  # the model's own name changes with each clone


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_trains_and_strips_to_a_plain_model(facts: dict, backend: str) -> None:
    found = facts[backend]
    assert found["backend"] == backend
    assert found["model_variables_after"] == found["model_variables_before"]  # the engine added none
    assert [_layer_and_name(path) for path in found["stripped_variables"]] == [
        _layer_and_name(path) for path in found["model_variables_before"]
    ]
    assert not found["stripped_optimizer_built"]
    assert found["step"] == 16 and found["masked_weights_match_masks"]
    case = next(case for case in training_cases() if case["name"] == "adam-polynomial")
    schedule = PolynomialSchedule.model_validate(case["schedule"])
    last_update = max(schedule_math.pruning_steps(schedule, 16))
    sparsity = schedule_math.pruning_sparsity(schedule, last_update)
    for path, size in found["sizes"].items():
        zeros = found["zeros"][path]
        if path.endswith("kernel"):
            assert zeros == size - schedule_math.kept_count(size, sparsity), path
        else:
            assert zeros == 0, path


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_refuses_steps_per_execution_above_one(facts: dict, backend: str) -> None:
    message = facts[backend]["steps_per_execution_error"]
    assert message is not None
    assert "steps_per_execution=2" in message and "steps_per_execution=1" in message


def test_a_resumed_run_ends_as_a_straight_one(inputs: Path) -> None:
    finish(run_side("engine_side", "resume", inputs, {"KERAS_BACKEND": "tensorflow"}))
    weights = load(inputs / "engine_resume.npz")
    count = sum(1 for key in weights if key.startswith("straight/"))
    assert count == 6
    for index in range(count):
        straight, resumed = weights[f"straight/{index}"], weights[f"resumed/{index}"]
        assert np.array_equal(straight.view(np.uint32), resumed.view(np.uint32)), index
    assert np.mean(weights["straight/2"] == 0) > 0.7  # pruned, at the polynomial's 0.8
