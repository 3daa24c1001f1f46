"""Checks every export passes before it is offered, and the manifest that goes with the files.

The sparsity and structure checks and the manifest serve both engines; TensorFlow and tfmot are imported
only by the tfmot engine's checks (and by an m-by-n check, which uses tfmot's own test of the pattern).
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prunelab.core.exports import file_digest
from prunelab.core.plans import RunPlan
from prunelab.core.specs import BlockSparsity, MByNSparsity, RunSpec

if TYPE_CHECKING:
    from prunelab.worker.training.tf import keras


class ExportVerificationError(RuntimeError):
    """An export does not hold what training logged; it is not offered."""


def m_by_n_holds(kernel: np.ndarray, m: int, n: int) -> bool:
    """At least m zeros in every group of n consecutive weights along the input dimension (tfmot's layout)."""
    from prunelab.worker.training.tf import pruning_utils, tf

    return bool(pruning_utils.is_pruned_m_by_n(tf.constant(kernel), (m, n)))


def blocks_are_whole(kernel: np.ndarray, block_size: tuple[int, int]) -> bool:
    """Every (h, w) block of a 2-D (in, out) kernel, edge blocks clipped, is either all zero or has no zero."""
    height, width = block_size
    rows, cols = kernel.shape
    for row in range(0, rows, height):
        for col in range(0, cols, width):
            block = kernel[row : row + height, col : col + width]
            if np.count_nonzero(block) not in (0, block.size):
                return False
    return True


def verify_export(
    stripped: keras.Model, pruned_kernels: dict[str, list[str]], logged_sparsity: dict[str, float], spec: RunSpec
) -> dict[str, float]:
    """Raise unless no wrapper remains, each pruned layer's zeros match the logged sparsity and the structure holds.

    `pruned_kernels` maps a layer to the names of its pruned weights; returns the measured sparsity per layer.
    """
    from prunelab.worker.training.tf import PruneLowMagnitude

    if any(isinstance(layer, PruneLowMagnitude) for layer in stripped.layers):
        raise ExportVerificationError("pruning wrappers remain in the exported model")
    leftovers = [w.name for w in stripped.weights if any(k in w.name for k in ("mask", "threshold", "pruning_step"))]
    if leftovers:
        raise ExportVerificationError(f"pruning variables remain in the exported model: {leftovers}")
    kernels = {
        layer_name: [weight.numpy() for weight in stripped.get_layer(layer_name).weights if weight.name in names]
        for layer_name, names in pruned_kernels.items()
    }
    return check_pruned_kernels(kernels, logged_sparsity, spec)


def check_pruned_kernels(
    pruned_kernels: dict[str, list[np.ndarray]], logged_sparsity: dict[str, float], spec: RunSpec
) -> dict[str, float]:
    """Raise unless each layer's pruned kernels have the sparsity training logged and the spec's structure holds.

    Returns the measured sparsity per layer (either engine's stripped kernels, as numpy arrays).
    """
    measured = {}
    for layer_name, kernels in pruned_kernels.items():
        zeros = sum(kernel.size - np.count_nonzero(kernel) for kernel in kernels)
        measured[layer_name] = zeros / sum(kernel.size for kernel in kernels)
        logged = logged_sparsity.get(layer_name)
        if logged is None or not np.isclose(measured[layer_name], logged, rtol=0, atol=1e-12):
            raise ExportVerificationError(
                f"layer {layer_name!r}: the export has sparsity {measured[layer_name]}, training logged {logged}"
            )
        structure = spec.structure
        for kernel in kernels:
            if isinstance(structure, MByNSparsity) and not m_by_n_holds(kernel, structure.m, structure.n):
                raise ExportVerificationError(
                    f"layer {layer_name!r}: the {structure.m}:{structure.n} pattern is broken"
                )
            if isinstance(structure, BlockSparsity) and not blocks_are_whole(kernel, structure.block_size):
                raise ExportVerificationError(f"layer {layer_name!r}: a {structure.block_size} block is partly pruned")
    return measured


def library_versions() -> dict[str, str]:
    """The tfmot engine's libraries (the keras engine writes its own: Keras, its backend)."""
    from prunelab.worker.training.tf import tf

    return {
        "tensorflow": tf.__version__,
        "tf_keras": importlib.metadata.version("tf-keras"),
        "tfmot": importlib.metadata.version("tensorflow-model-optimization"),
    }


def write_manifest(
    path: Path,
    spec: RunSpec,
    plan: RunPlan,
    measured_sparsity: dict[str, float],
    files: dict[str, Path],
    saved_model_files: dict[str, str] | None = None,
    versions: dict[str, str] | None = None,
) -> Path:
    """manifest.json: versions, spec, plan, measured sparsity per layer and sha256 of each exported file."""
    manifest: dict[str, Any] = {
        "versions": versions or library_versions(),
        "spec": spec.model_dump(mode="json"),
        "plan": plan.model_dump(mode="json"),
        "measured_sparsity": measured_sparsity,
        "files": {
            file_format: {"file": file.name, "size_bytes": file.stat().st_size, "sha256": file_digest(file)}
            for file_format, file in sorted(files.items())
        },
    }
    if saved_model_files is not None:
        manifest["saved_model_files"] = saved_model_files  # sha256 per file inside the SavedModel folder
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path
