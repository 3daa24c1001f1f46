"""The model a run starts from: the zoo's fresh model, a dense base run's stripped model, or an upload."""

from __future__ import annotations

from pathlib import Path

from prunelab.core.plans import RunPlan
from prunelab.core.recipes import upload_id
from prunelab.core.specs import RunSpec
from prunelab.worker.training.pruning import preflight_model
from prunelab.worker.training.result import ModelNotUsable
from prunelab.worker.training.tf import keras
from prunelab.worker.training.uploaded_models import load_uploaded_model
from prunelab.worker.training.zoo import build_model


def load_uploaded(path: Path) -> keras.Model:
    """An uploaded .keras file, re-inspected and loaded with safe_mode=True (no Lambda bytecode is revived)."""
    try:
        return load_uploaded_model(path)
    except Exception as error:  # UploadRejected, or anything tf-keras raises on a file it cannot revive
        raise ModelNotUsable(f"the uploaded model cannot be loaded safely: {error}") from error


def load_start_model(spec: RunSpec, path: Path) -> keras.Model:
    """The model in `path`: an upload (checked by tfmot's pre-flight) or a base run's stripped model."""
    if upload_id(spec.recipe) is None:
        return keras.models.load_model(path, compile=False)  # written by PruneLab itself
    model = load_uploaded(path)
    problems = preflight_model(model, spec)
    if problems:
        raise ModelNotUsable("; ".join(f"{'.'.join(problem.field)}: {problem.message}" for problem in problems))
    return model


def starting_model(
    spec: RunSpec, plan: RunPlan, input_shape: tuple[int, ...], num_classes: int, path: Path | None
) -> keras.Model:
    """A fresh zoo model, or the model the run starts from (a file the worker fetched)."""
    if path is None:
        if plan.base_run_id is not None or upload_id(spec.recipe) is not None:
            raise ModelNotUsable(f"the {spec.recipe.kind} recipe needs its starting model file")
        return build_model(spec.model, input_shape, num_classes)
    return load_start_model(spec, path)
