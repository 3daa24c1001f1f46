"""What runs can train on: the built-in catalog (GET) and uploaded models and data sets (POST) of /api/models
and /api/datasets."""

from __future__ import annotations

from fastapi import APIRouter, UploadFile, status

from prunelab.core.architectures import fits, param_counts
from prunelab.core.catalog import DATASETS, MODELS
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
    """Models of the built-in zoo, with parameter counts for each dataset's input shape."""
    return [
        {
            "name": info.name,
            "description": info.description,
            "source": "zoo",
            "param_counts": {
                dataset.name: param_counts(info.name, dataset.input_shape, dataset.num_classes)
                for dataset in DATASETS.values()
                if fits(info.name, dataset.input_shape)
            },
        }
        for info in MODELS.values()
    ]


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
