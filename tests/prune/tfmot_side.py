"""The reference side: tfmot 0.8.1 on tf-keras, run as `python -m tests.prune.tfmot_side masks|train FOLDER`.

Needs TF_USE_LEGACY_KERAS=1 (tests.prune.cases.run_side sets it). Masks come from tfmot's own
`Pruning._maybe_update_block_mask` inside a tf.function (graph mode, as in `fit`); training is
`prune_low_magnitude` + `UpdatePruningStep` from the shared initial weights, batches in order.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tests.prune.cases import BATCH_SIZE, EPOCHS, MODEL_SHAPES, load


def _tfmot():  # imported late: the environment must select tf-keras first
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl

    return tf, tfmot, keras, pruning_impl


def _structure_arguments(structure: dict) -> dict:
    if structure["kind"] == "block":
        return {"block_size": tuple(structure["block_size"]), "block_pooling_type": structure["block_pooling_type"]}
    if structure["kind"] == "m_by_n":
        return {"sparsity_m_by_n": (structure["m"], structure["n"])}
    return {}


def masks(folder: Path) -> None:
    tf, tfmot, _, pruning_impl = _tfmot()
    arrays = load(folder / "arrays.npz")
    cases = json.loads((folder / "cases.json").read_text())["masks"]
    out = {}
    for index, case in enumerate(cases):
        weights = tf.Variable(arrays[f"weights/{case['weights']}"])
        arguments = {"block_size": (1, 1), "block_pooling_type": "AVG", **_structure_arguments(case["structure"])}
        pruning = pruning_impl.Pruning(
            training_step_fn=lambda: tf.constant(1, tf.int64),
            pruning_vars=[(weights, None, None)],
            pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(case["sparsity"], 0),
            **arguments,
        )
        out[str(index)] = tf.function(
            lambda pruning=pruning, weights=weights: pruning._maybe_update_block_mask(weights)[1]
        )().numpy()
    np.savez(folder / "tfmot_masks.npz", **out)


def _schedule(tfmot, schedule: dict):
    if schedule["kind"] == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(
            schedule["target_sparsity"], schedule["begin_step"], schedule["end_step"], schedule["frequency"]
        )
    return tfmot.sparsity.keras.PolynomialDecay(
        schedule["initial_sparsity"], schedule["final_sparsity"], schedule["begin_step"], schedule["end_step"],
        power=schedule["power"], frequency=schedule["frequency"],
    )  # fmt: skip


def build_model(keras):
    """The tiny model of `cases.MODEL_SHAPES`, with the layer names the engine side gives it."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv2d"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(16, activation="relu", name="dense"),
            keras.layers.Dense(10, name="dense_1"),
        ]
    )


def optimizer(keras, name: str):
    return keras.optimizers.SGD(learning_rate=0.1) if name == "sgd" else keras.optimizers.Adam(learning_rate=0.01)


def initial_weights(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [arrays[f"init/{name}"] for name in MODEL_SHAPES]


def train(folder: Path) -> None:
    _, tfmot, keras, _ = _tfmot()
    arrays = load(folder / "arrays.npz")
    cases = json.loads((folder / "cases.json").read_text())["training"]
    out = {}
    for case in cases:
        model = build_model(keras)
        model.set_weights(initial_weights(arrays))
        layer_types = case["layer_types"]

        def wrap(layer, case=case, layer_types=layer_types):
            if layer.count_params() and (layer_types is None or type(layer).__name__ in layer_types):
                return tfmot.sparsity.keras.prune_low_magnitude(
                    layer,
                    pruning_schedule=_schedule(tfmot, case["schedule"]),
                    **_structure_arguments(case["structure"]),
                )
            return layer

        pruned = keras.models.clone_model(model, clone_function=wrap)
        pruned.compile(
            optimizer=optimizer(keras, case["optimizer"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        pruned.fit(
            arrays["x"], arrays["y"], batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0,
            validation_data=(arrays["x_val"], arrays["y_val"]),
            callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        )  # fmt: skip
        stripped = tfmot.sparsity.keras.strip_pruning(pruned)
        for name, value in zip(MODEL_SHAPES, stripped.get_weights(), strict=True):
            out[f"{case['name']}/{name}"] = value
    np.savez(folder / "tfmot_weights.npz", **out)


if __name__ == "__main__":
    command, target = sys.argv[1], Path(sys.argv[2])
    {"masks": masks, "train": train}[command](target)
