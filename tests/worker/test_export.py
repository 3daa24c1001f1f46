"""Export: stripped weights, compressed sizes, and reloadable .keras/.h5 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prunelab.core.exports import zipped_size
from prunelab.core.telemetry import compressed_size
from prunelab.worker.training import export
from prunelab.worker.training.datasets import load_dataset
from prunelab.worker.training.tf import keras, tfmot
from prunelab.worker.training.zoo import build_model
from tests.worker.conftest import DATA_DIR


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", DATA_DIR)


def _sparse_mlp(sparsity: float) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model("mlp", (8, 8, 1), 10)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel = layer.kernel.numpy()
            kernel[rng.random(kernel.shape) < sparsity] = 0.0
            layer.kernel.assign(kernel)
    return model


def test_zipped_export_is_smaller_for_a_sparse_model(tmp_path: Path) -> None:
    model = _sparse_mlp(0.9)
    stripped, exports = export.strip_and_save(model, tmp_path)
    assert stripped is model  # a model that was never wrapped is exported as it is
    sizes = export.export_sizes(exports)
    for file_format in ("keras", "h5"):
        assert sizes[f"{file_format}_zip_bytes"] < sizes[f"{file_format}_size_bytes"]
    dense = compressed_size(export.stripped_weight_arrays(build_model("mlp", (8, 8, 1), 10)))
    sparse = compressed_size(export.stripped_weight_arrays(model))
    assert sparse < dense / 3


@pytest.mark.parametrize("file_format", ["keras", "h5"])
def test_exports_reload_and_predict_the_same(tmp_path: Path, digits, file_format: str) -> None:
    model = _sparse_mlp(0.9)
    stripped, exports = export.strip_and_save(model, tmp_path)
    reloaded = keras.models.load_model(exports[file_format])
    expected = stripped.predict(digits.x_test, verbose=0)
    np.testing.assert_allclose(reloaded.predict(digits.x_test, verbose=0), expected, rtol=1e-6, atol=1e-6)


def test_stripped_weight_arrays_match_strip_pruning(digits) -> None:
    keras.utils.set_random_seed(0)
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.8, begin_step=0, frequency=1)
    model = tfmot.sparsity.keras.prune_low_magnitude(build_model("mlp", (8, 8, 1), 10), pruning_schedule=schedule)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # Mid-epoch the kernels hold values the mask zeroes, which is why the arrays are masked.
    model.fit(
        digits.x_train[:96],
        digits.y_train[:96],
        batch_size=32,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    arrays = export.stripped_weight_arrays(model)
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    assert len(arrays) == len(stripped.weights) == 4
    for array, weight in zip(arrays, stripped.weights, strict=True):
        np.testing.assert_array_equal(array, weight.numpy())
    assert [weight.layer_name for weight in export.pruned_weights(model)] == ["dense", "logits"]
    assert 1 - np.count_nonzero(arrays[0]) / arrays[0].size == pytest.approx(0.8, abs=1 / arrays[0].size)


def test_zipped_size_is_a_deflated_archive(tmp_path: Path) -> None:
    path = tmp_path / "zeros.bin"
    path.write_bytes(bytes(100_000))
    assert 0 < zipped_size(path) < 1_000
