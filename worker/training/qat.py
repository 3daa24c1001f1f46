"""Quantization-aware training with tfmot's default 8-bit scheme or its collaborative (preserving) schemes."""

from __future__ import annotations

from pathlib import Path

from core.specs import QatStage
from worker.training.tf import keras, tfmot


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


def load(path: Path) -> keras.Model:
    """A saved quantization-aware model (its layers are tfmot's, so they load inside `quantize_scope`)."""
    with tfmot.quantization.keras.quantize_scope():
        return keras.models.load_model(path)
