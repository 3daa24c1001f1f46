"""A user's Keras 3 script: `python -m tests.client.keras3_side URL OUT.json [forgotten]`, with KERAS_BACKEND set.

A two-branch Functional model on synthetic 8x8 images (the class is the brightest row), pruned by
`prunelab.prune.Pruner` (conv, hidden and skip; the classifier left dense by the scope) and logged into
PruneLab by `PruneLabCallback(..., pruner=pruner)`. OUT.json gets the run's id, the (key, step) pairs the
callback handed its sender, and what the script saw of its own model. With `forgotten`, the script leaves
`pruner.callback()` out of fit: OUT.json gets the error fit raised.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

# The tfmot script's model, data and schedule (16 steps an epoch), in Keras 3.
from tests.client.test_keras_callback import BATCH, BEGIN_STEP, EPOCHS, EXAMPLES, FREQUENCY, TARGET

EXPORTS = ("keras", "tflite", "tflite_int8")


def images(examples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.random((examples, 8, 8, 1), dtype=np.float32)
    return pixels, pixels[..., 0].sum(axis=2).argmax(axis=1).astype(np.int64)


def recorded_points(callback: Any) -> dict[tuple[str, int], float]:
    """Every point a PruneLabCallback hands its sender from now on, (key, step) -> value, kept here too."""
    points: dict[tuple[str, int], float] = {}
    send = callback.sender.log

    def log(run_key: str, step: int, metrics: dict[str, float], wall_time: float) -> None:
        points.update({(key, step): float(value) for key, value in metrics.items()})
        send(run_key, step, metrics, wall_time)

    callback.sender.log = log
    return points


def two_branch_model():  # type: ignore[no-untyped-def]
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8, 8, 1), name="pixels")
    features = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(keras.layers.Flatten(name="flatten")(features))
    skip = keras.layers.Dense(32, activation="relu", name="skip")(keras.layers.Flatten(name="raw")(inputs))
    outputs = keras.layers.Dense(8, name="logits")(keras.layers.Add(name="merge")([hidden, skip]))
    model = keras.Model(inputs, outputs, name="two_branch")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main(url: str, out: Path) -> None:
    import keras

    import prunelab.keras
    from prunelab.core.specs import ConstantSchedule, Scope
    from prunelab.prune import Pruner

    model = two_branch_model()
    schedule = ConstantSchedule(target_sparsity=TARGET, begin_step=BEGIN_STEP, end_step=-1, frequency=FREQUENCY)
    pruner = Pruner(model, schedule, scope=Scope(keep_last_dense=True))
    callback = prunelab.keras.PruneLabCallback(
        name=f"keras 3 on {keras.backend.backend()}",
        url=url,
        dataset="synthetic rows",
        exports=EXPORTS,
        pruner=pruner,
        flush_interval_s=0.1,
    )
    logged = recorded_points(callback)
    # The starting weights, for a tfmot script to start from the same ones.
    np.savez(out.with_suffix(".npz"), **{f"{layer.name}/{index}": array for layer in model.layers
                                         for index, array in enumerate(layer.get_weights())})  # fmt: skip
    x, y = images(EXAMPLES, 1)
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=EPOCHS,
        validation_data=images(64, 2),
        shuffle=False,
        verbose=0,
        callbacks=[pruner.callback(), callback],
    )
    kernel = keras.ops.convert_to_numpy(model.get_layer("hidden").kernel)
    facts = {
        "backend": keras.backend.backend(),
        "run_id": callback.wait_for_run_id(30),
        "logged": [[key, step, value] for (key, step), value in sorted(logged.items())],
        "is_prunelab_callback": isinstance(callback, prunelab.keras.PruneLabCallback),
        "hidden_sparsity": float(np.mean(kernel == 0)),
    }
    out.write_text(json.dumps(facts))


def forgotten(url: str, out: Path) -> None:
    import prunelab.keras
    from prunelab.core.specs import ConstantSchedule
    from prunelab.prune import Pruner

    model = two_branch_model()
    pruner = Pruner(model, ConstantSchedule(target_sparsity=TARGET, begin_step=0, end_step=-1, frequency=1))
    callback = prunelab.keras.PruneLabCallback(name="forgotten", url=url, pruner=pruner, flush_interval_s=0.1)
    x, y = images(EXAMPLES, 1)
    try:
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[callback])
    except RuntimeError as error:
        out.write_text(json.dumps({"error": str(error), "run_id": callback.wait_for_run_id(30)}))
    # Leaving now: the callback ends the run as failed on the way out.


if __name__ == "__main__":
    (forgotten if sys.argv[3:] == ["forgotten"] else main)(sys.argv[1], Path(sys.argv[2]))
