"""Every export format of one run: files load and predict, TFLite keeps the zeros, manifest and sizes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from prunelab.core.specs import PolynomialSchedule, RunSpec
from prunelab.worker.training import export_tflite
from prunelab.worker.training.datasets import load_dataset
from prunelab.worker.training.tf import keras, tf
from prunelab.worker.training.verify import ExportVerificationError, verify_export
from tests.worker.conftest import Run, run_training

SPEC = RunSpec(
    dataset="digits",
    model="mlp",
    epochs=1,
    batch_size=64,
    schedule=PolynomialSchedule(initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=20, frequency=5),
    exports=["keras", "h5", "saved_model", "tflite", "tflite_int8"],
)
FORMATS = ("keras", "h5", "saved_model", "tflite", "tflite_int8")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_training(SPEC, tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None)


def _kernels(run: Run) -> dict[str, np.ndarray]:
    model = keras.models.load_model(run.result.exports["keras"])
    return {name: model.get_layer(name).kernel.numpy() for name in ("dense", "logits")}


def test_every_requested_format_is_written_with_sizes_and_a_dense_baseline(exported: Run) -> None:
    summary = exported.result.summary
    assert set(exported.result.exports) == {*FORMATS, "masks", "manifest"}
    for name in FORMATS:
        assert summary[f"{name}_size_bytes"] == exported.result.exports[name].stat().st_size
        assert summary[f"{name}_zip_bytes"] > 0
        # 80% of the kernels are zero: every format zips smaller than the same model unpruned.
        assert summary[f"{name}_zip_bytes"] < summary[f"dense_{name}_zip_bytes"], name
        assert summary[f"{name}_zip_ratio"] > 1.3, name
    assert summary["keras_size_bytes"] == summary["dense_keras_size_bytes"]  # dense storage: same raw size
    assert summary["tflite_int8_size_bytes"] < summary["tflite_size_bytes"] / 2


def test_keras_h5_and_saved_model_predict_alike(exported: Run, digits, tmp_path: Path) -> None:
    reference = keras.models.load_model(exported.result.exports["keras"]).predict(digits.x_test, verbose=0)
    h5 = keras.models.load_model(exported.result.exports["h5"]).predict(digits.x_test, verbose=0)
    np.testing.assert_allclose(h5, reference, rtol=1e-6, atol=1e-6)
    with zipfile.ZipFile(exported.result.exports["saved_model"]) as archive:
        assert "manifest.json" in archive.namelist()
        archive.extractall(tmp_path)
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    outputs = loaded.signatures["serving_default"](tf.constant(digits.x_test))
    np.testing.assert_allclose(next(iter(outputs.values())).numpy(), reference, rtol=1e-5, atol=1e-5)


def test_tflite_float_keeps_every_zero_and_predicts_alike(exported: Run, digits) -> None:
    path = exported.result.exports["tflite"]
    tensors = export_tflite.constant_tensors(path)
    for name, kernel in _kernels(exported).items():
        weights = export_tflite.layer_weight_tensor(tensors, "mlp", name, kernel.size)
        np.testing.assert_array_equal(weights, kernel.T)  # TFLite stores Dense kernels as (out, in)
        assert weights.size - np.count_nonzero(weights) == kernel.size - np.count_nonzero(kernel)
    reference = keras.models.load_model(exported.result.exports["keras"]).predict(digits.x_test[:50], verbose=0)
    np.testing.assert_allclose(export_tflite.predict(path, digits.x_test[:50]), reference, rtol=1e-4, atol=1e-4)


def test_tflite_int8_keeps_the_zeros_and_mostly_agrees(exported: Run, digits) -> None:
    path = exported.result.exports["tflite_int8"]
    tensors = export_tflite.constant_tensors(path)
    for name, kernel in _kernels(exported).items():
        weights = export_tflite.layer_weight_tensor(tensors, "mlp", name, kernel.size)
        assert weights.dtype == np.int8
        # Symmetric quantization maps 0 to 0; tiny kept weights may round to 0 as well.
        assert np.all(weights[kernel.T == 0] == 0)
    reference = keras.models.load_model(exported.result.exports["keras"]).predict(digits.x_test[:100], verbose=0)
    quantized = export_tflite.predict(path, digits.x_test[:100])
    assert np.mean(quantized.argmax(1) == reference.argmax(1)) > 0.9


def test_full_integer_quantization_calibrates_on_training_images(exported: Run, digits, tmp_path: Path) -> None:
    model = keras.models.load_model(exported.result.exports["keras"])
    path = export_tflite.write_tflite(model, tmp_path / "full.tflite", int8="full_integer", calibration=digits.x_train)
    tensors = export_tflite.constant_tensors(path)
    kernel = model.get_layer("dense").kernel.numpy()
    weights = export_tflite.layer_weight_tensor(tensors, "mlp", "dense", kernel.size)
    assert weights.dtype == np.int8 and np.all(weights[kernel.T == 0] == 0)
    assert export_tflite.predict(path, digits.x_test[:5]).shape == (5, 10)


def test_latency_is_recorded_for_both_tflite_files(exported: Run) -> None:
    for name in ("tflite", "tflite_int8"):
        assert 0 < exported.result.summary[f"{name}_latency_ms"] < 100


def test_manifest_lists_versions_spec_sparsity_and_digests(exported: Run) -> None:
    manifest = json.loads(exported.result.exports["manifest"].read_text())
    assert set(manifest["versions"]) == {"tensorflow", "tf_keras", "tfmot"}
    assert manifest["spec"]["exports"] == list(FORMATS)
    kernels = _kernels(exported)
    for name, kernel in kernels.items():
        assert manifest["measured_sparsity"][name] == 1 - np.count_nonzero(kernel) / kernel.size
    from prunelab.core.exports import file_digest

    for name in ("keras", "h5", "tflite", "tflite_int8", "masks"):
        assert manifest["files"][name]["sha256"] == file_digest(exported.result.exports[name])
    assert "saved_model.pb" in manifest["saved_model_files"]


def test_verification_refuses_a_model_that_differs_from_the_log(exported: Run) -> None:
    model = keras.models.load_model(exported.result.exports["keras"])
    pruned = {"dense": [model.get_layer("dense").kernel.name]}
    logged = {"dense": 1 - np.count_nonzero(model.get_layer("dense").kernel.numpy()) / (64 * 128)}
    assert verify_export(model, pruned, logged, SPEC) == logged
    with pytest.raises(ExportVerificationError, match="training logged"):
        verify_export(model, pruned, {"dense": logged["dense"] - 0.01}, SPEC)
    two_four = RunSpec.model_validate({**SPEC.model_dump(), "structure": {"kind": "m_by_n", "m": 2, "n": 4}})
    with pytest.raises(ExportVerificationError, match="2:4 pattern is broken"):
        verify_export(model, pruned, logged, two_four)
