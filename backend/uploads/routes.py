"""HTTP routes for uploaded models (.keras) and data sets (.npz)."""

from __future__ import annotations

from fastapi import APIRouter, UploadFile, status

from backend.db import SessionDep
from backend.dependencies import StoreDep, UploadId
from backend.errors import NOT_FOUND
from backend.kit.identity import PrincipalDep
from backend.models import UploadKind
from backend.uploads import service
from backend.uploads.schemas import UploadOut

router = APIRouter(prefix="/api", tags=["uploads"], responses=NOT_FOUND)


@router.post("/models", status_code=status.HTTP_201_CREATED)
def upload_model(file: UploadFile, session: SessionDep, store: StoreDep, principal: PrincipalDep) -> UploadOut:
    """Upload a Keras v3 `.keras` model; it is checked without being loaded (.h5 is refused)."""
    upload = service.store_upload(session, store, UploadKind.MODEL, file.filename, file.file, principal.user_id)
    return UploadOut.model_validate(upload)


@router.post("/datasets", status_code=status.HTTP_201_CREATED)
def upload_dataset(file: UploadFile, session: SessionDep, store: StoreDep, principal: PrincipalDep) -> UploadOut:
    """Upload an `.npz` data set with arrays x_train, y_train, x_test, y_test (no pickled objects)."""
    upload = service.store_upload(session, store, UploadKind.DATASET, file.filename, file.file, principal.user_id)
    return UploadOut.model_validate(upload)


@router.get("/uploads/{upload_id}")
def get_upload(upload_id: UploadId, session: SessionDep) -> UploadOut:
    """Metadata of an uploaded model or data set."""
    return UploadOut.model_validate(service.get_upload(session, upload_id))
