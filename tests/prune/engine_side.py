"""The engine side: `python -m tests.prune.engine_side masks|train|resume|backend FOLDER`, with KERAS_BACKEND set.

Builds the same tiny model as `tfmot_side` in Keras 3, from the same initial weights, and prunes it
with `prunelab.prune`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tests.prune.cases import BATCH_SIZE, EPOCHS, MODEL_SHAPES, load


def _schedule(schedule: dict):
    from prunelab.core.specs import ConstantSchedule, PolynomialSchedule

    kind = schedule["kind"]
    return (ConstantSchedule if kind == "constant" else PolynomialSchedule).model_validate(schedule)


def _structure(structure: dict):
    from pydantic import TypeAdapter

    from prunelab.core.specs import Structure

    return TypeAdapter(Structure).validate_python(structure)


def masks(folder: Path) -> None:
    import keras

    from prunelab.prune import compute_mask

    arrays = load(folder / "arrays.npz")
    cases = json.loads((folder / "cases.json").read_text())["masks"]
    out = {}
    for index, case in enumerate(cases):
        weights = keras.Variable(arrays[f"weights/{case['weights']}"])
        mask = compute_mask(weights.value, case["sparsity"], _structure(case["structure"]))
        out[str(index)] = keras.ops.convert_to_numpy(mask)
    np.savez(folder / f"engine_masks_{keras.backend.backend()}.npz", **out)


def build_model():
    import keras

    from tests.prune.tfmot_side import build_model as same_model

    return same_model(keras)


def compiled_model(arrays: dict[str, np.ndarray], optimizer_name: str, steps_per_execution: int = 1):
    import keras

    from tests.prune.tfmot_side import initial_weights, optimizer

    model = build_model()
    model.set_weights(initial_weights(arrays))
    model.compile(
        optimizer=optimizer(keras, optimizer_name),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return model


def pruner_for(model, case: dict):
    from prunelab.core.specs import Scope
    from prunelab.prune import Pruner

    scope = Scope(layer_types=case["layer_types"])
    return Pruner(model, _schedule(case["schedule"]), _structure(case["structure"]), scope)


def fit(model, arrays: dict[str, np.ndarray], callbacks: list, epochs: int = EPOCHS, initial_epoch: int = 0) -> None:
    model.fit(
        arrays["x"], arrays["y"], batch_size=BATCH_SIZE, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
        verbose=0, validation_data=(arrays["x_val"], arrays["y_val"]), callbacks=callbacks,
    )  # fmt: skip


def train(folder: Path) -> None:
    import keras

    arrays = load(folder / "arrays.npz")
    out = {}
    for case in json.loads((folder / "cases.json").read_text())["training"]:
        model = compiled_model(arrays, case["optimizer"])
        pruner = pruner_for(model, case)
        fit(model, arrays, [pruner.callback()])
        stripped = pruner.strip()
        for name, value in zip(MODEL_SHAPES, stripped.get_weights(), strict=True):
            out[f"{case['name']}/{name}"] = value
        out[f"{case['name']}/step"] = np.asarray(pruner.step)
        for key, mask in pruner.state().items():
            if key != "step":
                out[f"{case['name']}/{key}"] = mask
    np.savez(folder / f"engine_weights_{keras.backend.backend()}.npz", **out)


def resume(folder: Path) -> None:
    """Adam + polynomial: 2 epochs straight, and 1 epoch, save, reload everything, 1 more; weights written."""
    import keras

    from prunelab.prune import Pruner

    arrays = load(folder / "arrays.npz")
    case = next(case for case in json.loads((folder / "cases.json").read_text())["training"]
                if case["name"] == "adam-polynomial")  # fmt: skip
    model = compiled_model(arrays, "adam")
    pruner = pruner_for(model, case)
    fit(model, arrays, [pruner.callback()])
    straight = pruner.strip().get_weights()

    model = compiled_model(arrays, "adam")
    pruner = pruner_for(model, case)
    fit(model, arrays, [pruner.callback()], epochs=1)
    model.save(folder / "epoch1.keras")
    pruner.save_state(folder / "epoch1.npz")
    del model, pruner

    model = keras.models.load_model(folder / "epoch1.keras")
    resumed = Pruner(model, _schedule(case["schedule"]))
    resumed.restore_state(folder / "epoch1.npz")
    fit(model, arrays, [resumed.callback()], initial_epoch=1)
    out = {f"straight/{index}": value for index, value in enumerate(straight)}
    out |= {f"resumed/{index}": value for index, value in enumerate(resumed.strip().get_weights())}
    np.savez(folder / "engine_resume.npz", **out)


def backend(folder: Path) -> None:
    """On this process's backend: train and strip; refuse steps_per_execution > 1. Facts printed as JSON."""
    import keras

    arrays = load(folder / "arrays.npz")
    cases = {case["name"]: case for case in json.loads((folder / "cases.json").read_text())["training"]}
    facts: dict = {"backend": keras.backend.backend()}

    model = compiled_model(arrays, "adam")
    before = [variable.path for variable in model.variables]
    pruner = pruner_for(model, cases["adam-polynomial"])
    fit(model, arrays, [pruner.callback()])
    stripped = pruner.strip()
    facts["model_variables_before"] = before
    facts["model_variables_after"] = [variable.path for variable in model.variables]
    facts["stripped_variables"] = [variable.path for variable in stripped.variables]
    facts["stripped_optimizer_built"] = bool(getattr(stripped, "optimizer", None) and stripped.optimizer.built)
    facts["step"] = pruner.step
    facts["zeros"] = {
        variable.path: int(np.sum(keras.ops.convert_to_numpy(variable.value) == 0)) for variable in stripped.weights
    }
    facts["sizes"] = {variable.path: int(np.prod(variable.shape)) for variable in stripped.weights}
    facts["masked_weights_match_masks"] = all(
        bool(
            np.all(
                keras.ops.convert_to_numpy(weight.variable.value)[keras.ops.convert_to_numpy(weight.mask.value) == 0]
                == 0
            )
        )
        for weight in pruner.weights
    )

    model = compiled_model(arrays, "sgd", steps_per_execution=2)
    pruner = pruner_for(model, cases["sgd-constant"])
    try:
        fit(model, arrays, [pruner.callback()])
        facts["steps_per_execution_error"] = None
    except ValueError as error:
        facts["steps_per_execution_error"] = str(error)
    (folder / f"engine_backend_{keras.backend.backend()}.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    command, target = sys.argv[1], Path(sys.argv[2])
    {"masks": masks, "train": train, "resume": resume, "backend": backend}[command](target)
