"""ORM models. Alembic (migrations/) owns the schema; a test checks the two match."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware on every database: SQLite stores no zone, so UTC is attached on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: use backend.models.utcnow()")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A person who signs in. `password_hash` is an argon2id hash (backend/users/passwords.py)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiToken(Base):
    """A user's token for scripts: `plt_<id>_<secret>`; only the secret's SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    user: Mapped[User] = relationship(lazy="joined")


class UserSession(Base):
    """A dashboard sign-in; the cookie holds `<id>_<secret>` signed, the row the secret's SHA-256."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def _schedule_kind(context: Any) -> str | None:
    spec = context.get_current_parameters().get("spec")
    schedule = spec.get("schedule") if isinstance(spec, dict) else None
    return schedule.get("kind") if isinstance(schedule, dict) else None


class Run(Base):
    __tablename__ = "runs"
    # The runs list's default order and its keyset cursor: newest first, then by id.
    __table_args__ = (Index("ix_runs_created_at_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED, index=True)
    # Who trains it: "prunelab" (the worker), or the client of an external run (backend/runs/external.py),
    # which the worker never claims and the reaper never requeues.
    source: Mapped[str] = mapped_column(String(32), default="prunelab", server_default="prunelab")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The spec's schedule kind, copied when the row is written (a spec never changes): the runs filter's
    # `kind:` reads a short column instead of parsing every spec's JSON.
    schedule_kind: Mapped[str | None] = mapped_column(String(32), default=_schedule_kind)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    # The dense run this run starts from (pretrained); it waits, queued, until that run succeeds.
    parent_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True, default=None
    )
    # The latest epoch-end checkpoint in the artifact store ({"key", "epoch", "step", "size_bytes", "sha256",
    # "attempt"}): recorded, fenced on the attempt, only once it is completely written and verified; a requeued
    # attempt resumes from it. Cleared, and the checkpoint objects removed, when the run ends.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Who submitted it; NULL for runs submitted while PruneLab had no users, or with the service token.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    owner: Mapped[User | None] = relationship(lazy="joined")

    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="Artifact.format"
    )

    @property
    def owner_name(self) -> str | None:
        return self.owner.name if self.owner else None


class Sweep(Base):
    """A submitted sweep (`core.sweeps.SweepSpec`): its points are runs, each tagged with the sweep and its point."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    point_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    owner: Mapped[User | None] = relationship(lazy="joined")

    @property
    def owner_name(self) -> str | None:
        return self.owner.name if self.owner else None


class SweepPoint(Base):
    """One point of a sweep (variant, axis values, seed) and the run that stands for it now.

    `run_id` is NULL once that run is deleted: the point is missing. A retried point names its new run.
    """

    __tablename__ = "sweep_points"
    __table_args__ = (UniqueConstraint("sweep_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str | None] = mapped_column(String(40), default=None)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True, default=None)


class Metric(Base):
    """Append-only history: one value per (run, key, step). NULL value = non-finite (NaN/inf).

    No foreign key to `runs`: its check was a trigger per inserted row, half of a batch's INSERT on PostgreSQL.
    The one writer (`metrics.ingest.record_batch`) locks the batch's runs once and refuses a missing one, and
    `runs.service.delete_run` deletes a run's rows itself."""

    __tablename__ = "metrics"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    wall_time: Mapped[float] = mapped_column(Float)


class LatestMetric(Base):
    """The newest value of each (run, key), for run lists without scanning the history."""

    __tablename__ = "latest_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)


class MetricSeries(Base):
    """A compacted (run, key) history: its extent and how its min/max pyramid is cut (backend/metrics/pyramid.py)."""

    __tablename__ = "metric_series"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    point_count: Mapped[int] = mapped_column(BigInteger)
    first_step: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    base_width: Mapped[int] = mapped_column(BigInteger)  # steps per bucket of level 1; level L: base * factor**(L-1)
    level_factor: Mapped[int] = mapped_column(Integer)
    level_count: Mapped[int] = mapped_column(Integer)  # level 0 (every point) included


class MetricChunk(Base):
    """Compressed columns of one step range of one pyramid level (level 0: every stored point)."""

    __tablename__ = "metric_chunks"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_step: Mapped[int] = mapped_column(BigInteger)
    point_count: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class Artifact(Base):
    """A stored, complete file of a run; `storage_key` is built by the server, never by a user."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "format"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(32))
    storage_key: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    zip_size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # The store's version of the object whose sha256 was checked at write (S3 ETag, a local file's identity):
    # while the store reports the same, a download need not re-hash it.
    storage_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    run: Mapped[Run] = relationship(back_populates="artifacts")


class UploadKind(enum.StrEnum):
    MODEL = "model"
    DATASET = "dataset"


class Upload(Base):
    """A user's uploaded model or data set; stored under a key built from its id, never from its file name."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    original_filename: Mapped[str] = mapped_column(String(255))  # shown to people, never used in a path
    storage_key: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    owner: Mapped[User | None] = relationship(lazy="joined")

    @property
    def owner_name(self) -> str | None:
        return self.owner.name if self.owner else None


class MlflowExperiment(Base):
    """An MLflow experiment (`/api/2.0/mlflow/experiments/...`): a named folder of external runs.

    Id 0 is MLflow's "Default", made on first use; deleting experiments is not offered.
    """

    __tablename__ = "mlflow_experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(500), unique=True)
    artifact_location: Mapped[str] = mapped_column(String(1000), default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MlflowRun(Base):
    """The MLflow side of a run logged through the MLflow API: its experiment and MLflow's own fields."""

    __tablename__ = "mlflow_runs"
    # search_runs' default order within an experiment: newest start first, then by id.
    __table_args__ = (
        Index("ix_mlflow_runs_experiment_id_start_time_ms_run_id", "experiment_id", "start_time_ms", "run_id"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("mlflow_experiments.id"))
    user_id: Mapped[str] = mapped_column(String(250), default="")
    start_time_ms: Mapped[int] = mapped_column(BigInteger)
    end_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)

    run: Mapped[Run] = relationship(lazy="joined")


class RunParam(Base):
    """A run's parameter (MLflow's `log_param`): set once; logging the same key again must repeat the value."""

    __tablename__ = "run_params"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunTagValue(Base):
    """A run's key/value tag (MLflow's `set_tag`, last write wins); the run's own `tags` are plain labels."""

    __tablename__ = "run_tag_values"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Worker(Base):
    """A training worker as it last reported itself (worker/presence.py); gone once two heartbeats were missed."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # the Celery node name, as in runs.worker
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)  # a clean shutdown
    # The Keras backends its keras engine can run (Keras 3 and the backend's package importable); None: not
    # recorded (a worker from before this column), so the API does not refuse on its account.
    keras_backends: Mapped[list[str] | None] = mapped_column(JSON, default=None)
