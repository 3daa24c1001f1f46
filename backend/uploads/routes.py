"""What runs can train on: the built-in catalog (GET) and uploaded models and data sets (POST) of /api/models
and /api/datasets."""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, UploadFile, status

from prunelab.core.architectures import fits, param_counts
from prunelab.core.catalog import DATASETS, MODELS
from prunelab.core.registry import Engine
from prunelab.server.errors import NOT_FOUND
from prunelab.server.kit.dependencies import SessionDep, StoreDep, UploadId
from prunelab.server.kit.identity import PrincipalDep
from prunelab.server.models import UploadKind
from prunelab.server.settings import get_settings
from prunelab.server.uploads import service
from prunelab.server.uploads.schemas import UploadOut

router = APIRouter(prefix="/api")


@router.get("/datasets", tags=["catalog"])
def list_datasets() -> list[dict[str, object]]:
    """Datasets a run can use, and whether each is available without a download."""
    data_dir = get_settings().data_dir
    assert data_dir is not None
    return [
        {
            "name": info.name,
            "description": info.description,
            "train_examples": info.train_examples,
            "test_examples": info.test_examples,
            "input_shape": list(info.input_shape),
            "num_classes": info.num_classes,
            "cached": info.file_name is None or (data_dir / info.file_name).is_file(),
        }
        for info in DATASETS.values()
    ]


@router.get("/models", tags=["catalog"])
def list_models() -> list[dict[str, object]]:
    """Models of the built-in zoo, with parameter counts for each dataset's input shape: `prunable_params` for
    the default engine (tfmot), `prunable_params_by_engine` for each (the Keras engine also prunes depthwise
    kernels)."""
    return [
        {
            "name": info.name,
            "description": info.description,
            "source": "zoo",
            "param_counts": {
                dataset.name: counts(info.name, dataset.input_shape, dataset.num_classes)
                for dataset in DATASETS.values()
                if fits(info.name, dataset.input_shape)
            },
        }
        for info in MODELS.values()
    ]


def counts(model: str, input_shape: tuple[int, ...], num_classes: int) -> dict[str, object]:
    by_engine = {engine: param_counts(model, input_shape, num_classes, engine) for engine in get_args(Engine)}
    return {
        **by_engine["tfmot"],
        "prunable_params_by_engine": {engine: found["prunable_params"] for engine, found in by_engine.items()},
    }


@router.post("/models", status_code=status.HTTP_201_CREATED, tags=["uploads"])
def upload_model(file: UploadFile, session: SessionDep, store: StoreDep, principal: PrincipalDep) -> UploadOut:
    """Upload a Keras v3 `.keras` model; it is checked without being loaded (.h5 is refused)."""
    upload = service.store_upload(session, store, UploadKind.MODEL, file.filename, file.file, principal.user_id)
    return UploadOut.model_validate(upload)


@router.post("/datasets", status_code=status.HTTP_201_CREATED, tags=["uploads"])
def upload_dataset(file: UploadFile, session: SessionDep, store: StoreDep, principal: PrincipalDep) -> UploadOut:
    """Upload an `.npz` data set with arrays x_train, y_train, x_test, y_test (no pickled objects)."""
    upload = service.store_upload(session, store, UploadKind.DATASET, file.filename, file.file, principal.user_id)
    return UploadOut.model_validate(upload)


@router.get("/uploads/{upload_id}", tags=["uploads"], responses=NOT_FOUND)
def get_upload(upload_id: UploadId, session: SessionDep) -> UploadOut:
    """Metadata of an uploaded model or data set."""
    return UploadOut.model_validate(service.get_upload(session, upload_id))
