"""A folder (or zip) of TensorBoard event files becomes a finished PruneLab external run."""

from __future__ import annotations

import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy.orm import Session

from prunelab.core.errors import InvalidUpload
from prunelab.server.imports.tensorboard_events import (
    EventScalars,
    external_spec,
    is_event_file,
    measured_sparsity,
    pruning_params,
    read_folder,
)
from prunelab.server.metrics.service import MetricPoint, record_points
from prunelab.server.mlflow_api import service as mlflow
from prunelab.server.models import Run, RunStatus
from prunelab.server.runs import external
from prunelab.server.uploads.archives import UploadRejected, check_archive

SOURCE_TAG = "prunelab.imported_from"
WRITE_BATCH = 5000
MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 8 * 1024**3


def store_scalars(session: Session, scalars: EventScalars, name: str, owner_id: int | None, source: str) -> Run:
    """A succeeded external run holding every scalar; params from the tfmot wrappers of the logged Keras model."""
    if not scalars.series:
        detail = f" ({'; '.join(scalars.problems)})" if scalars.problems else ""
        raise InvalidUpload(f"no scalar summaries found in {scalars.files} TensorBoard event file(s){detail}")
    spec = external_spec(scalars, name or "TensorBoard import")
    run = external.create_external_run(session, spec.name, spec, owner_id, source="tensorboard")
    # The planned-vs-measured chart's series: the layers' sparsity weighted by their prunable weights.
    measured = (
        {"measured_sparsity": measured_sparsity(scalars, spec)} if "measured_sparsity" not in scalars.series else {}
    )
    points = [
        MetricPoint(key, step, value, wall_time)
        for key, steps in {**scalars.series, **measured}.items()
        for step, (value, wall_time) in steps.items()
    ]
    for start in range(0, len(points), WRITE_BATCH):
        record_points(session, run.id, points[start : start + WRITE_BATCH])
    params = pruning_params(scalars.keras_model)
    mlflow.log_params(session, run.id, params)
    mlflow.set_tags(session, run.id, {SOURCE_TAG: f"tensorboard:{source}"[:8000]})
    wall_times = [point.wall_time for point in points]
    summary = {
        "imported": {"from": "tensorboard", "event_files": scalars.files, "points": len(points),
                     "problems": scalars.problems[:20], "params": params},
    }  # fmt: skip
    external.finish_external_run(session, run.id, RunStatus.SUCCEEDED, None, summary)
    run.started_at = datetime.fromtimestamp(min(wall_times), UTC)
    run.finished_at = datetime.fromtimestamp(max(wall_times), UTC)
    session.flush()
    return run


def import_folder(session: Session, folder: Path, name: str = "", owner_id: int | None = None) -> Run:
    """Import every event file under `folder` as one run named `name` (default: the folder's name)."""
    if not folder.is_dir():
        raise InvalidUpload(f"{folder} is not a folder of TensorBoard event files")
    return store_scalars(session, read_folder(folder), name or folder.resolve().name, owner_id, folder.name)


def import_zip(session: Session, source: BinaryIO, filename: str, name: str = "", owner_id: int | None = None) -> Run:
    """Import a zipped log folder: only its event files are unpacked (to a scratch folder), by checked names."""
    try:
        with zipfile.ZipFile(source) as archive:
            members = check_archive(archive, kind="TensorBoard", max_members=MAX_MEMBERS,
                                    max_total_bytes=MAX_UNPACKED_BYTES)  # fmt: skip
            events = [m for m in members if not m.is_dir() and is_event_file(m.filename)]
            if not events:
                raise InvalidUpload(f"{filename!r} holds no TensorBoard event files (events.out.tfevents.*)")
            with tempfile.TemporaryDirectory(prefix="prunelab-tensorboard-") as scratch:
                root = Path(scratch)
                for member in events:
                    target = root.joinpath(*PurePosixPath(member.filename.replace("\\", "/")).parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(member) as packed, target.open("wb") as unpacked:
                        while chunk := packed.read(1 << 20):
                            unpacked.write(chunk)
                # `zip -r logs.zip logs/` wraps the log folder in one top folder: the log folder is inside it.
                children = list(root.iterdir())
                scalars = read_folder(children[0] if len(children) == 1 and children[0].is_dir() else root)
    except zipfile.BadZipFile as error:
        raise InvalidUpload(f"{filename!r} is not a zip archive of a TensorBoard log folder ({error})") from None
    except UploadRejected as rejected:
        raise InvalidUpload(str(rejected)) from None
    return store_scalars(session, scalars, name or Path(filename).stem, owner_id, filename)
