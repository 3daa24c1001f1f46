"""Quantization-aware training with tfmot's default 8-bit scheme or its collaborative (preserving) schemes."""

from __future__ import annotations

from pathlib import Path

from prunelab.core.specs import QatStage
from prunelab.worker.training.tf import keras, tfmot


def scheme(name: str) -> object:
    """pqat keeps the pruned zeros; pcqat keeps the zeros and the clusters; default keeps neither."""
    if name == "pqat":
        return tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    if name == "pcqat":
        return tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    if name == "default":
        return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    raise ValueError(f"unknown qat scheme {name!r}; choose one of: default, pqat, pcqat")


def quantize(model: keras.Model, stage: QatStage) -> keras.Model:
    """The stripped (pruned, maybe clustered) model annotated and made quantization-aware under the stage's scheme."""
    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    return tfmot.quantization.keras.quantize_apply(annotated, scheme(stage.scheme))


def load(path: Path, stage: QatStage, clustered: keras.Model | None = None) -> keras.Model:
    """A saved quantization-aware model.

    pqat and default load whole inside `quantize_scope`. A pcqat model's cluster state is not in its config, so it
    is rebuilt from the clustered model it was trained from (the `clustered_h5` export) and given the saved weights.
    """
    if stage.scheme == "pcqat":
        if clustered is None:
            raise ValueError("a pcqat model is rebuilt from its clustered model: pass the clustered_h5 export")
        rebuilt = quantize(clustered, stage)
        rebuilt.load_weights(path)
        return rebuilt
    with tfmot.quantization.keras.quantize_scope():
        return keras.models.load_model(path)
