"""Write every requested export of a finished run, verified, with sizes, latency and a manifest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prunelab.core.exports import ARTIFACT_FILE_NAMES
from prunelab.core.plans import RunPlan
from prunelab.core.specs import RunSpec
from prunelab.core.telemetry import MaskHistory
from prunelab.worker.training import export, export_tflite
from prunelab.worker.training.datasets import Dataset
from prunelab.worker.training.tf import keras
from prunelab.worker.training.verify import write_manifest


@dataclass
class Delivery:
    files: dict[str, Path]  # artifact format -> file: model formats, "masks" and "manifest"
    summary: dict[str, float | int]


def write_model_files(model: keras.Model, spec: RunSpec, dataset: Dataset, output_dir: Path) -> dict[str, Path]:
    """The spec's model formats except saved_model (which needs the manifest): keras, h5, tflite, tflite_int8."""
    files = export.save_exports(model, output_dir, [name for name in spec.exports if name in ("keras", "h5")])
    for name in ("tflite", "tflite_int8"):
        if name in spec.exports:
            options = {"int8": spec.int8_quantization, "calibration": dataset.x_train} if name == "tflite_int8" else {}
            files[name] = export_tflite.write_tflite(model, output_dir / ARTIFACT_FILE_NAMES[name], **options)
    return files


def write_saved_model_zip(
    model: keras.Model, path: Path, manifest_for: Callable[[dict[str, str]], Path] | None = None
) -> Path:
    """saved_model.zip: the SavedModel folder, and beside it the manifest made from the folder's file digests."""
    scratch = export.scratch_folder(path.parent, "saved_model")
    try:
        digests = export.save_saved_model(model, scratch / "saved_model")
        extra = [manifest_for(digests)] if manifest_for is not None else []
        export.zip_folder(scratch / "saved_model", path, extra)
    finally:
        export.remove_folder(scratch)
    return path


def dense_baseline_sizes(dense: keras.Model, spec: RunSpec, dataset: Dataset, output_dir: Path) -> dict[str, int]:
    """`dense_<format>_size_bytes` / `_zip_bytes`: the same architecture unpruned, exported the same way."""
    scratch = export.scratch_folder(output_dir, "dense")
    try:
        files = write_model_files(dense, spec, dataset, scratch)
        if "saved_model" in spec.exports:
            files["saved_model"] = write_saved_model_zip(dense, scratch / ARTIFACT_FILE_NAMES["saved_model"])
        return export.export_sizes(files, prefix="dense_")
    finally:
        export.remove_folder(scratch)


def deliver(
    stripped: keras.Model,
    dense: keras.Model,
    spec: RunSpec,
    plan: RunPlan,
    dataset: Dataset,
    output_dir: Path,
    measured_sparsity: dict[str, float],
    masks: MaskHistory,
) -> Delivery:
    """Every requested format, masks.npz and manifest.json, with raw/zip sizes against the dense baseline."""
    files = write_model_files(stripped, spec, dataset, output_dir)
    summary: dict[str, float | int] = {}
    for name in ("tflite", "tflite_int8"):
        if name in files:
            summary[f"{name}_latency_ms"] = export_tflite.latency_ms(files[name], dataset.x_test)
    files["masks"] = masks.save(output_dir / ARTIFACT_FILE_NAMES["masks"])
    manifest_path = output_dir / ARTIFACT_FILE_NAMES["manifest"]

    def manifest_for(saved_model_digests: dict[str, str] | None) -> Path:
        return write_manifest(manifest_path, spec, plan, measured_sparsity, files, saved_model_digests)

    if "saved_model" in spec.exports:
        # The manifest goes inside the zip, so it lists the SavedModel's own files rather than the zip.
        files["saved_model"] = write_saved_model_zip(
            stripped, output_dir / ARTIFACT_FILE_NAMES["saved_model"], manifest_for
        )
    else:
        manifest_for(None)
    files["manifest"] = manifest_path
    summary.update(export.export_sizes(files))
    dense_sizes = dense_baseline_sizes(dense, spec, dataset, output_dir)
    summary.update(dense_sizes)
    for name in spec.exports:
        summary[f"{name}_zip_ratio"] = dense_sizes[f"dense_{name}_zip_bytes"] / summary[f"{name}_zip_bytes"]
    return Delivery(files=files, summary=summary)
