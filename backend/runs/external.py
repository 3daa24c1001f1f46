"""External runs: runs PruneLab did not train (a tfmot script's callback, an MLflow client, an import).

An external run is created `running` by its client, which then sends its points and files and
finishes it (`succeeded` or `failed`). It is never queued: no worker claims it, and the reaper
never requeues it (`source != "prunelab"`). A client that goes silent (a script killed mid-fit)
would leave it running for ever, so the reaper marks an external run failed once nothing was
heard from it for `external_run_timeout_s` (default a day; every batch of points, file and
finish counts as a sign of life, stored in `heartbeat_at`). Points go through `record_points`,
the same hot tier the worker writes, so reads, SSE, compaction and compare see no difference.
Services flush; the request's session commits.
"""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from prunelab.core.errors import InvalidSpec, RunStateConflict
from prunelab.core.exports import EXPORT_FORMATS
from prunelab.core.external import ExternalRunSpec, coverage_from_layers, external_plan
from prunelab.server.artifacts.service import set_stored, store_errors
from prunelab.server.artifacts.storage import ArtifactStore, artifact_key
from prunelab.server.metrics.service import MAX_KEY_LENGTH, MetricPoint, latest_values, record_points
from prunelab.server.models import Artifact, Run, RunStatus, utcnow
from prunelab.server.runs.service import get_run

# The source of runs the worker trains; any other value is an external run.
PRUNELAB_SOURCE = "prunelab"
MAX_POINTS_PER_REQUEST = 10_000
MAX_STEP = 2**62
# MLflow's rule for metric keys (alphanumerics, _ - . space /), plus ':' for namespaced keys.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-./ :]+")
FINISHED_BY_CLIENT = (RunStatus.SUCCEEDED, RunStatus.FAILED)


def is_external(run: Run) -> bool:
    return run.source != PRUNELAB_SOURCE


def create_external_run(
    session: Session,
    name: str | None,
    spec: ExternalRunSpec | None,
    owner_id: int | None,
    *,
    source: str | None = None,
    tags: Sequence[str] = (),
) -> Run:
    """Store a running external run (never queued); `spec` None: only its name is known (an MLflow run, say)."""
    spec = spec or ExternalRunSpec()
    updates: dict[str, Any] = {}
    if name:
        updates["name"] = name
    if source:
        updates["source"] = source
    spec = ExternalRunSpec.model_validate({**spec.model_dump(), **updates})
    now = utcnow()
    run = Run(
        name=spec.display_name(),
        status=RunStatus.RUNNING,
        source=spec.source,
        spec=spec.model_dump(mode="json"),
        plan=external_plan(spec).model_dump(mode="json"),
        attempt=1,
        worker=f"external:{spec.source}",
        started_at=now,
        heartbeat_at=now,
        owner_id=owner_id,
        tags=list(dict.fromkeys(tags)),
    )
    session.add(run)
    session.flush()
    return run


def get_external_run(session: Session, run_id: int) -> Run:
    run = get_run(session, run_id)
    if not is_external(run):
        raise RunStateConflict(
            f"run {run_id} is trained by PruneLab's worker; only external runs (POST /api/runs/external) "
            "take points, files and status from a client"
        )
    return run


def _running(session: Session, run_id: int, action: str) -> Run:
    run = get_external_run(session, run_id)
    if run.status != RunStatus.RUNNING:
        raise RunStateConflict(f"run {run_id} is {run.status}; {action} only while it is running")
    return run


@dataclass(frozen=True)
class RejectedPoint:
    index: int
    key: str | None
    step: int | None
    error: str


@dataclass(frozen=True)
class IngestReport:
    accepted: int
    rejected: list[RejectedPoint]
    cancel_requested: bool


def _check_point(index: int, raw: object, default_wall_time: float) -> MetricPoint | RejectedPoint:
    """One point as sent, checked field by field; the first problem is the point's error."""
    if not isinstance(raw, dict):
        return RejectedPoint(index, None, None, "a point is an object {key, step, value[, wall_time]}")
    key, step, value = raw.get("key"), raw.get("step"), raw.get("value")
    shown_key = key if isinstance(key, str) else None
    shown_step = step if isinstance(step, int) and not isinstance(step, bool) else None
    unknown = set(raw) - {"key", "step", "value", "wall_time"}

    def reject(error: str) -> RejectedPoint:
        return RejectedPoint(index, shown_key[:MAX_KEY_LENGTH] if shown_key else shown_key, shown_step, error)

    if unknown:
        return reject(f"unknown fields {sorted(unknown)}; a point has key, step, value and wall_time")
    if not isinstance(key, str) or not key:
        return reject("key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        return reject(f"key is longer than {MAX_KEY_LENGTH} characters")
    if not KEY_PATTERN.fullmatch(key):
        return reject("key may hold only letters, digits, '_', '-', '.', ' ', '/' and ':'")
    if shown_step is None:
        return reject("step must be a whole number")
    if not 0 <= shown_step <= MAX_STEP:
        return reject(f"step must be in range [0, 2**62]; got {shown_step}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return reject(f"value must be a number (NaN and infinities are stored as gaps); got {value!r}"[:300])
    wall_time = raw.get("wall_time", default_wall_time)
    try:
        number, seconds = float(value), float(wall_time)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number, seconds = math.nan, math.nan
        if isinstance(value, int) and abs(value) > 2**1023:
            return reject("value is too large for a 64-bit float")
    if isinstance(wall_time, bool) or not isinstance(wall_time, int | float) or not math.isfinite(seconds):
        return reject("wall_time must be a finite number of seconds since the run started")
    return MetricPoint(key=key, step=shown_step, value=number, wall_time=seconds)


def ingest_points(session: Session, run_id: int, points: Sequence[object]) -> IngestReport:
    """Store a batch of points idempotently (the first write of a (run, key, step) wins); report each rejected one."""
    run = _running(session, run_id, "points are taken")
    now = utcnow()
    default_wall_time = (now - (run.started_at or run.created_at)).total_seconds()
    accepted: list[MetricPoint] = []
    rejected: list[RejectedPoint] = []
    for index, raw in enumerate(points):
        if index >= MAX_POINTS_PER_REQUEST:
            rejected.append(
                RejectedPoint(
                    index,
                    None,
                    None,
                    f"over the limit of {MAX_POINTS_PER_REQUEST} points per request; send it in another request",
                )
            )
            continue
        checked = _check_point(index, raw, default_wall_time)
        (accepted if isinstance(checked, MetricPoint) else rejected).append(checked)  # type: ignore[arg-type]
    record_points(session, run_id, accepted)
    run.heartbeat_at = now
    session.flush()
    return IngestReport(accepted=len(accepted), rejected=rejected, cancel_requested=run.cancel_requested)


def finish_external_run(
    session: Session, run_id: int, status: RunStatus, error: str | None, summary: dict[str, Any] | None
) -> Run:
    """Close an external run as its client says; asking again for the same end is answered, not refused."""
    if status not in FINISHED_BY_CLIENT:
        raise InvalidSpec(("status",), f"status must be succeeded or failed, not {status}")
    run = get_external_run(session, run_id)
    if run.status == status:
        return run  # a retried finish: it already happened
    if run.status != RunStatus.RUNNING:
        raise RunStateConflict(f"run {run_id} is already {run.status}; it cannot become {status}")
    spec = ExternalRunSpec.model_validate(run.spec)
    merged = {**(run.summary or {}), **_finite(summary or {})}
    latest = {key: value for key, (_, value) in latest_values(session, run_id).items()}
    if "coverage" not in merged and (coverage := coverage_from_layers(spec, latest)) is not None:
        merged["coverage"] = coverage
    if "measured_sparsity" not in merged and latest.get("measured_sparsity") is not None:
        merged["measured_sparsity"] = latest["measured_sparsity"]
    merged.setdefault("steps", max((step for step, _ in latest_values(session, run_id).values()), default=0))
    run.summary = merged
    run.status = status
    run.error = (error or "the script reported a failure")[:10_000] if status == RunStatus.FAILED else None
    run.finished_at = utcnow()
    run.heartbeat_at = run.finished_at
    session.flush()
    return run


# What each format's file starts with: a file that does not is refused before it is stored.
SIGNATURES: dict[str, tuple[int, bytes, str]] = {
    "keras": (0, b"PK\x03\x04", "a .keras file is a zip archive"),
    "saved_model": (0, b"PK\x03\x04", "a saved_model is sent as a zip archive"),
    "h5": (0, b"\x89HDF\r\n\x1a\n", "an .h5 file starts with the HDF5 signature"),
    "tflite": (4, b"TFL3", "a .tflite file carries the TFL3 identifier"),
    "tflite_int8": (4, b"TFL3", "a .tflite file carries the TFL3 identifier"),
}


def _check_signature(export_format: str, head: bytes) -> None:
    offset, signature, rule = SIGNATURES[export_format]
    if head[offset : offset + len(signature)] != signature:
        raise InvalidSpec(("file",), f"this is not a {export_format} file: {rule}")


def _finite(value: Any) -> Any:
    """A client's summary with NaN and infinities as null: the JSON columns (PostgreSQL's above all) refuse them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _finite(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_finite(inner) for inner in value]
    return value


def store_external_artifact(
    session: Session, store: ArtifactStore, run_id: int, export_format: str, source: BinaryIO, sha256: str
) -> Artifact:
    """Store a model file the client made, under a key built from the run id and the format, checking its sha256."""
    if export_format not in EXPORT_FORMATS:
        raise InvalidSpec(("format",), f"unknown format {export_format!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    run = get_external_run(session, run_id)
    if run.status not in (RunStatus.RUNNING, RunStatus.SUCCEEDED):
        raise RunStateConflict(f"run {run_id} is {run.status}; files are taken while it runs or once it succeeded")
    with tempfile.TemporaryDirectory(prefix="prunelab-external-") as scratch:
        path = Path(scratch) / "artifact"
        digest = hashlib.sha256()
        with path.open("wb") as target:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
                target.write(chunk)
        with path.open("rb") as head:
            _check_signature(export_format, head.read(8))
        if digest.hexdigest() != sha256:
            raise InvalidSpec(("sha256",), "the file's sha256 differs from the one sent: it was damaged on the way")
        with store_errors(f"the {export_format} file of run {run_id}"):
            stored = store.put_file(artifact_key(run_id, run.attempt, export_format), path)
    if stored.sha256 != sha256:  # put_file read it back
        raise InvalidSpec(("sha256",), "the stored file's sha256 differs from the one sent; send it again")
    artifact = next((a for a in run.artifacts if a.format == export_format), None)
    if artifact is None:
        artifact = Artifact(run_id=run_id, format=export_format)
        run.artifacts.append(artifact)
    set_stored(artifact, stored).created_at = utcnow()
    run.summary = {
        **(run.summary or {}),
        f"{export_format}_size_bytes": stored.size_bytes,
        f"{export_format}_zip_bytes": stored.zip_size_bytes,
    }
    run.heartbeat_at = utcnow()
    session.flush()
    return artifact
