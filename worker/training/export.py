"""Strip pruning wrappers, save the model, and measure what pruning buys in bytes."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from prunelab.core.exports import ARTIFACT_FILE_NAMES, file_digest
from prunelab.core.exports import export_sizes as export_sizes  # in core: the keras engine measures with it too
from prunelab.telemetry_callback import StrippedWeight, read_variables, stripped_arrays, stripped_weights
from prunelab.worker.training.tf import PruneLowMagnitude, keras, tfmot


def pruned_weights(model: keras.Model) -> list[StrippedWeight]:
    """The weights a pruning wrapper masks (the kernels), in layer order."""
    return [weight for weight in stripped_weights(model) if weight.mask is not None]


def stripped_weight_arrays(model: keras.Model) -> list[np.ndarray]:
    """The weights of `model` as they will be exported: pruned kernels multiplied by their masks."""
    weights = stripped_weights(model)
    return stripped_arrays(weights, read_variables(weights))


def strip(model: keras.Model) -> keras.Model:
    """The model without pruning wrappers (a model that was never wrapped comes back unchanged)."""
    if not any(isinstance(layer, PruneLowMagnitude) for layer in model.layers):
        return model
    return tfmot.sparsity.keras.strip_pruning(model)


def save_exports(model: keras.Model, output_dir: Path, formats: Iterable[str] = ("keras", "h5")) -> dict[str, Path]:
    """Save a stripped model as `model.keras` and/or `model.h5`, without optimizer state."""
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    # The .keras format keeps no optimizer for an uncompiled model; HDF5 is told explicitly.
    if "keras" in formats:
        paths["keras"] = output_dir / ARTIFACT_FILE_NAMES["keras"]
        model.save(paths["keras"])
    if "h5" in formats:
        paths["h5"] = output_dir / ARTIFACT_FILE_NAMES["h5"]
        model.save(paths["h5"], include_optimizer=False)
    return paths


def save_saved_model(model: keras.Model, folder: Path) -> dict[str, str]:
    """Write a SavedModel folder; return the sha256 of each file in it by relative path."""
    model.save(folder, save_format="tf", include_optimizer=False)
    return {str(path.relative_to(folder)): file_digest(path) for path in sorted(folder.rglob("*")) if path.is_file()}


def zip_folder(folder: Path, path: Path, extra: Iterable[Path] = ()) -> Path:
    """A ZIP_DEFLATED archive of `folder` (under its own name) plus `extra` files at the top."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, arcname=str(Path(folder.name) / file.relative_to(folder)))
        for file in extra:
            archive.write(file, arcname=file.name)
    return path


def scratch_folder(output_dir: Path, name: str) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{name}-", dir=output_dir))


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def strip_and_save(model: keras.Model, output_dir: Path) -> tuple[keras.Model, dict[str, Path]]:
    """Strip the wrappers, save both formats, and return the stripped model with the paths."""
    stripped = strip(model)
    return stripped, save_exports(stripped, output_dir)
