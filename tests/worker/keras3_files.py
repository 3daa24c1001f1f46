"""Run with KERAS_BACKEND set: load a run's .keras file in Keras 3 and print what it holds, as JSON.

`python tests/worker/keras3_files.py model.keras` prints whether it carries an optimizer (loaded as saved,
compiled if the file keeps a compile config), its optimizer's variables, and each Dense/Conv kernel's
count of zeros and size.
"""

from __future__ import annotations

import json
import sys

import keras
import numpy as np


def main(path: str) -> None:
    model = keras.saving.load_model(path)
    optimizer = getattr(model, "optimizer", None)
    kernels = {
        layer.name: [int(np.sum(np.asarray(layer.kernel) == 0)), int(np.asarray(layer.kernel).size)]
        for layer in model.layers
        if hasattr(layer, "kernel")
    }
    facts = {
        "backend": keras.backend.backend(),
        "optimizer": optimizer is not None,
        "optimizer_variables": len(optimizer.variables) if optimizer is not None else 0,
        "variables": [variable.path for variable in model.variables],
        "kernels": kernels,
    }
    print(json.dumps(facts))


if __name__ == "__main__":
    main(sys.argv[1])
