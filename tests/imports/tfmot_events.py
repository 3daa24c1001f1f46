"""Write real TensorBoard event files with tfmot's PruningSummaries on a tiny pruned model; print what they hold.

`python -m tests.imports.tfmot_events LOG_DIR` trains a two-layer MLP for 3 epochs with
ConstantSparsity(0.5), logging with `PruningSummaries` (a Keras TensorBoard callback: it also
writes train/ and validation/ scalars) and prints, as the last line, the expected per-layer
sparsity at each step PruningSummaries logs (read from the masks at the start of each epoch,
when it logs them) and the number of epochs.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

EPOCHS = 3


class MaskReader(keras.callbacks.Callback):
    """The masks' sparsity at each epoch's start, at the optimizer's iteration: what PruningSummaries logs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, dict[int, float]] = {}

    def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        for layer in self.model.layers:
            if hasattr(layer, "pruning_vars"):  # a tfmot PruneLowMagnitude wrapper
                for _, mask, _ in layer.pruning_vars:
                    self.seen.setdefault(layer.layer.name, {})[step] = float(1 - np.mean(mask.numpy()))


def main(log_dir: str) -> None:
    rng = np.random.RandomState(0)
    x = rng.rand(256, 8).astype("float32")
    y = (x.sum(axis=1) > 4).astype("int32")
    model = keras.Sequential(
        [
            keras.layers.Dense(16, activation="relu", input_shape=(8,), name="hidden"),
            keras.layers.Dense(2, name="logits"),
        ]
    )
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=4)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    masks = MaskReader()
    pruned.fit(
        x, y, epochs=EPOCHS, batch_size=32, validation_split=0.25, verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), masks,
                   tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir)],
    )  # fmt: skip
    print(json.dumps({"layer_sparsity": masks.seen, "epochs": EPOCHS}))


if __name__ == "__main__":
    main(sys.argv[1])
