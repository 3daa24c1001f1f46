"""Strip pruning wrappers, save the model, and measure what pruning buys in bytes."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prunelab.core.exports import ARTIFACT_FILE_NAMES, EXPORT_FORMATS, file_digest, zipped_size
from prunelab.worker.training.tf import PruneLowMagnitude, keras, tf, tfmot

# The level at which weight bytes are compressed while training (zlib's default trade-off).
COMPRESSION_LEVEL = 6


@dataclass(frozen=True)
class StrippedWeight:
    """A weight that survives `strip_pruning`, with the mask that zeroes it while it is wrapped."""

    variable: tf.Variable
    mask: tf.Variable | None  # the wrapper's mask variable, None for weights that are not pruned
    layer_name: str  # the name of the layer that owns the weight (not its wrapper's)


def stripped_weights(model: keras.Model) -> list[StrippedWeight]:
    """Every weight of `model` except tfmot's mask, threshold and pruning_step variables."""
    weights = []
    for layer in model.layers:
        if isinstance(layer, PruneLowMagnitude):
            masks = {weight.ref(): mask for weight, mask, _ in layer.pruning_vars}
            for variable in layer.layer.weights:
                weights.append(StrippedWeight(variable, masks.get(variable.ref()), layer.layer.name))
        else:
            weights.extend(StrippedWeight(variable, None, layer.name) for variable in layer.weights)
    return weights


def pruned_weights(model: keras.Model) -> list[StrippedWeight]:
    """The weights a pruning wrapper masks (the kernels), in layer order."""
    return [weight for weight in stripped_weights(model) if weight.mask is not None]


def read_variables(weights: list[StrippedWeight]) -> list[np.ndarray]:
    """One `batch_get_value` of the weights followed by their masks (see `apply_masks`)."""
    variables = [weight.variable for weight in weights]
    variables += [weight.mask for weight in weights if weight.mask is not None]
    return keras.backend.batch_get_value(variables)


def apply_masks(weights: list[StrippedWeight], values: list[np.ndarray]) -> list[np.ndarray]:
    """The arrays `strip_pruning` would leave, from a `read_variables` snapshot."""
    masks = iter(values[len(weights) :])
    return [
        value * next(masks) if weight.mask is not None else value
        for weight, value in zip(weights, values[: len(weights)], strict=True)
    ]


def stripped_weight_arrays(model: keras.Model) -> list[np.ndarray]:
    """The weights of `model` as they will be exported: pruned kernels multiplied by their masks."""
    weights = stripped_weights(model)
    return apply_masks(weights, read_variables(weights))


def compressed_weights_size(arrays: list[np.ndarray]) -> int:
    """Bytes of the concatenated weight tensors after zlib at `COMPRESSION_LEVEL`."""
    return len(zlib.compress(b"".join(array.tobytes() for array in arrays), COMPRESSION_LEVEL))


def zero_fraction(array: np.ndarray) -> float:
    return 1.0 - np.count_nonzero(array) / array.size if array.size else 0.0


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


def export_sizes(exports: dict[str, Path], prefix: str = "") -> dict[str, int]:
    """`<prefix><format>_size_bytes` and `<prefix><format>_zip_bytes` for every exported model file."""
    sizes = {}
    for file_format, path in exports.items():
        if file_format not in EXPORT_FORMATS:
            continue
        sizes[f"{prefix}{file_format}_size_bytes"] = Path(path).stat().st_size
        sizes[f"{prefix}{file_format}_zip_bytes"] = zipped_size(path)
    return sizes
