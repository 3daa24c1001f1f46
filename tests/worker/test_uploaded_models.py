"""The worker's loader of uploaded models: re-checks the archive, then loads with safe_mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.stack import REPO
from prunelab.server.uploads.archives import UploadRejected
from prunelab.worker.training.tf import keras
from prunelab.worker.training.uploaded_models import load_uploaded_model
from tests.backend import hostile_files as hostile


def test_a_built_in_model_loads(tmp_path: Path) -> None:
    model = keras.Sequential(
        [keras.layers.InputLayer(input_shape=(8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_uploaded_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == ["Flatten", "Dense"]


def test_a_lambda_model_is_refused_before_keras_sees_it(tmp_path: Path) -> None:
    model = keras.Sequential([keras.layers.InputLayer(input_shape=(4,)), keras.layers.Lambda(lambda x: x * 2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(UploadRejected, match="Lambda"):
        load_uploaded_model(path)


def test_a_file_swapped_in_the_store_is_checked_again(tmp_path: Path) -> None:
    path = tmp_path / "swapped.keras"
    path.write_bytes(hostile.keras_archive(hostile.unknown_module_config()))
    with pytest.raises(UploadRejected, match="module 'os'"):
        load_uploaded_model(path)


def test_a_keras3_model_is_refused_with_its_version_not_a_deserialization_error(tmp_path: Path) -> None:
    # tf-keras fails on a Keras 3 file deep in deserialization ("Unrecognized keyword arguments: ['batch_shape']").
    path = tmp_path / "k3.keras"
    save = (
        "import sys, keras; keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), "
        "keras.layers.Dense(10)]).save(sys.argv[1])"
    )
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env.update({"KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": ""})
    subprocess.run([sys.executable, "-c", save, str(path)], env=env, cwd=REPO, check=True, capture_output=True)
    with pytest.raises(
        UploadRejected, match=r"saved by Keras 3\.\d+\.\d+; the tfmot engine trains tf-keras models only"
    ):
        load_uploaded_model(path)
