"""Load a user's uploaded .keras model in the worker, never in the API process.

The archive is checked again with the API's rules (a file could have been swapped in
the store since), then loaded with `safe_mode=True` and `compile=False`: no Lambda
bytecode is deserialized and no training configuration is revived.
"""

from __future__ import annotations

from pathlib import Path

from prunelab.server.uploads.inspect_keras import inspect_keras
from prunelab.worker.training.tf import keras


def load_uploaded_model(path: Path) -> keras.Model:
    """The uploaded model, after its archive passes the checks; raises UploadRejected otherwise."""
    inspect_keras(path)
    return keras.models.load_model(path, safe_mode=True, compile=False)
