"""Where a run's starting model comes from: a succeeded dense run's stripped model, or an uploaded model.

Used by the runs service (to refuse a spec with a 422 naming the field) and by the worker
(to find the file to start from). Services flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from prunelab.core.catalog import DATASETS
from prunelab.core.errors import InvalidSpec
from prunelab.core.scope import keras_engine_class_problems
from prunelab.core.specs import RunSpec
from prunelab.server.models import Artifact, Run, RunStatus, Upload, UploadKind
from prunelab.server.uploads.inspect_keras import keras_major

BASE_FIELD = ("recipe", "base_run_id")
UPLOAD_FIELD = ("recipe", "upload_id")


@dataclass(frozen=True)
class ModelUpload:
    upload_id: int
    storage_key: str
    meta: dict[str, Any]


def check_base_run(session: Session, spec: RunSpec, base_run_id: int) -> Run:
    """The succeeded dense run `base_run_id`, trained on the spec's dataset and model, with a .keras model."""
    base = session.get(Run, base_run_id)
    if base is None:
        raise InvalidSpec(BASE_FIELD, f"run {base_run_id} does not exist")
    if base.source != "prunelab":
        raise InvalidSpec(
            BASE_FIELD, f"run {base_run_id} is an external run; a base run must be a dense run PruneLab trained"
        )
    base_spec = RunSpec.model_validate(base.spec)
    # A sensitivity sweep's exported model is the dense model it swept, so it can be a base too.
    if base_spec.recipe.kind not in ("dense", "sensitivity"):
        raise InvalidSpec(
            BASE_FIELD,
            f"run {base_run_id} is a {base_spec.recipe.kind} run; a base run must be a dense run (or a sensitivity "
            "sweep, whose model is dense)",
        )
    if base.status != RunStatus.SUCCEEDED:
        raise InvalidSpec(BASE_FIELD, f"run {base_run_id} is {base.status}; a base run must have succeeded")
    for name in ("dataset", "model"):
        if getattr(base_spec, name) != getattr(spec, name):
            raise InvalidSpec(
                BASE_FIELD,
                f"run {base_run_id} trained {name} {getattr(base_spec, name)!r}, this spec asks for "
                f"{getattr(spec, name)!r}; they must be the same",
            )
    if base_model_key(session, base_run_id) is None:
        raise InvalidSpec(BASE_FIELD, f"run {base_run_id} has no .keras model to start from")
    return base


def base_model_key(session: Session, run_id: int) -> str | None:
    """The artifact store key of a run's stripped .keras model."""
    return session.scalar(sa.select(Artifact.storage_key).where(Artifact.run_id == run_id, Artifact.format == "keras"))


def model_upload(session: Session, upload_id: int) -> ModelUpload:
    """The uploaded model `upload_id`, or InvalidSpec naming recipe.upload_id."""
    upload = session.get(Upload, upload_id)
    if upload is None:
        raise InvalidSpec(
            UPLOAD_FIELD, f"upload {upload_id} does not exist; upload a .keras file with POST /api/models"
        )
    if upload.kind != UploadKind.MODEL:
        raise InvalidSpec(UPLOAD_FIELD, f"upload {upload_id} is a {upload.kind}, not a model")
    return ModelUpload(upload_id, upload.storage_key, dict(upload.meta or {}))


def check_upload_fits(spec: RunSpec, upload: ModelUpload) -> None:
    """An uploaded model must be saved by the Keras its engine trains, be prunable by it, and take the images."""
    version = upload.meta.get("keras_version")
    keras3 = (keras_major(version) or 2) >= 3
    if keras3 and spec.engine == "tfmot":
        # tf-keras cannot load a Keras 3 file (it fails in the worker, mid-run): refuse it here, saying why.
        raise InvalidSpec(
            UPLOAD_FIELD,
            f"upload {upload.upload_id} was saved by Keras {version}: the tfmot engine trains tf-keras (Keras 2) "
            'models only. Choose the keras engine for a Keras 3 model ("engine": "keras", and a "backend"), '
            "or upload the model saved by tf-keras",
        )
    if not keras3 and spec.engine == "keras":
        saved_by = f"tf-keras {version}" if version else "a Keras that did not record its version (tf-keras)"
        raise InvalidSpec(
            UPLOAD_FIELD,
            f"upload {upload.upload_id} was saved by {saved_by}: the keras engine trains Keras 3 models; "
            'use "engine": "tfmot" for it, or upload the model saved by Keras 3',
        )
    if spec.engine == "keras":
        for problem in keras_engine_class_problems(list(upload.meta.get("layers") or []), spec):
            raise InvalidSpec(problem.field, f"upload {upload.upload_id}: {problem.message}")
    recorded = upload.meta.get("input_shape")
    if not recorded:
        return
    shape = tuple(recorded[1:] if recorded[0] is None else recorded)
    expected = tuple(DATASETS[spec.dataset].input_shape)
    if shape != expected:
        raise InvalidSpec(
            ("dataset",),
            f"upload {upload.upload_id} takes inputs of shape {list(shape)}, dataset {spec.dataset!r} has "
            f"{list(expected)}",
        )
