"""Load a user's uploaded .keras model in the worker, never in the API process.

The archive is checked again with the API's rules (a file could have been swapped in
the store since), then loaded with `safe_mode=True` and `compile=False`: no Lambda
bytecode is deserialized and no training configuration is revived.
"""

from __future__ import annotations

from pathlib import Path

from prunelab.server.uploads.archives import UploadRejected
from prunelab.server.uploads.inspect_keras import inspect_keras, keras_major
from prunelab.worker.training.tf import keras


def load_uploaded_model(path: Path) -> keras.Model:
    """The uploaded model, after its archive passes the checks; raises UploadRejected otherwise."""
    version = inspect_keras(path)["keras_version"]
    if (keras_major(version) or 2) >= 3:  # a run queued before the API refused these: tf-keras cannot load it
        raise UploadRejected(f"the model was saved by Keras {version}; the tfmot engine trains tf-keras models only")
    return keras.models.load_model(path, safe_mode=True, compile=False)
