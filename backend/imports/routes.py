"""Upload endpoints: a zipped TensorBoard log folder, or a zipped mlflow-export-import export, becomes runs."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Form, UploadFile, status

from prunelab.core.errors import InvalidUpload
from prunelab.server.imports import mlflow_runs, tensorboard
from prunelab.server.kit.dependencies import SessionDep
from prunelab.server.kit.identity import PrincipalDep
from prunelab.server.runs.presenters import run_out, run_outs
from prunelab.server.runs.schemas import RunOut
from prunelab.server.uploads.archives import UploadRejected, check_archive

# A refused archive is a 422 in FastAPI's validation shape (a list naming the `file` field), as documented by default.
router = APIRouter(prefix="/api/imports", tags=["imports"])
MLFLOW_FILES = ("run.json", "experiment.json")


@router.post("/tensorboard", status_code=status.HTTP_201_CREATED)
def import_tensorboard(
    file: UploadFile,
    session: SessionDep,
    principal: PrincipalDep,
    name: Annotated[str, Form(max_length=200)] = "",
) -> RunOut:
    """Import a zipped TensorBoard log folder (tfmot's PruningSummaries, Keras' TensorBoard) as a finished run."""
    filename = file.filename or "tensorboard.zip"
    run = tensorboard.import_zip(session, file.file, filename, name, principal.user_id)
    return run_out(session, run)


@router.post("/mlflow", status_code=status.HTTP_201_CREATED)
def import_mlflow(file: UploadFile, session: SessionDep, principal: PrincipalDep) -> list[RunOut]:
    """Import a zipped mlflow-export-import run or experiment export; each run becomes an MLflow run here."""
    filename = file.filename or "mlflow.zip"
    try:
        with zipfile.ZipFile(file.file) as archive, tempfile.TemporaryDirectory(prefix="prunelab-mlflow-") as scratch:
            members = check_archive(archive, kind="MLflow export", max_members=tensorboard.MAX_MEMBERS,
                                    max_total_bytes=tensorboard.MAX_UNPACKED_BYTES)  # fmt: skip
            root = Path(scratch)
            for member in members:
                parts = PurePosixPath(member.filename.replace("\\", "/")).parts
                if member.is_dir() or not parts or parts[-1] not in MLFLOW_FILES:
                    continue  # artifacts stay behind: PruneLab keeps metrics, params and tags
                target = root.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
            folder = _export_root(root)
            runs = mlflow_runs.read_folder(folder)
    except zipfile.BadZipFile as error:
        raise InvalidUpload(f"{filename!r} is not a zip archive ({error})") from None
    except UploadRejected as rejected:
        raise InvalidUpload(str(rejected)) from None
    except mlflow_runs.MlflowSourceError as error:
        raise InvalidUpload(f"{filename!r}: {error}") from None
    stored = [mlflow_runs.store_run(session, run, principal.user_id) for run in runs]
    return run_outs(session, [row.run for row in stored])


def _export_root(root: Path) -> Path:
    """The folder holding run.json (a run export) or the run folders (an experiment export)."""
    parents = sorted({path.parent for path in root.rglob("run.json")})
    if len(parents) == 1:
        return parents[0]
    return Path(os.path.commonpath(parents)) if parents else root
