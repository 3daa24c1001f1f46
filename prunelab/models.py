"""What the client returns: runs, their files and uploads, parsed from the server's JSON.

Fields the server adds later are kept (`extra="allow"`), so a newer server never breaks an older client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class Artifact(BaseModel):
    """A stored file of a run: a model format, the manifest, the masks."""

    model_config = ConfigDict(extra="allow")

    format: str
    size_bytes: int
    zip_size_bytes: int = 0
    sha256: str
    url: str


class Run(BaseModel):
    """A run as `GET /api/runs/{id}` shows it: spec, plan, status, latest values, summary and files."""

    model_config = ConfigDict(extra="allow")

    id: int
    name: str
    status: str
    spec: dict[str, Any] = Field(default_factory=dict)
    plan: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False
    attempt: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    step: int | None = None
    parent_run_id: int | None = None
    latest: dict[str, float | None] = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    note: str = ""
    owner: str | None = None
    queue_position: int | None = None
    waiting: str | None = None

    @property
    def finished(self) -> bool:
        """True once the run succeeded, failed or was cancelled."""
        return self.status in FINISHED_STATUSES

    @property
    def total_steps(self) -> int | None:
        """Training steps the plan resolved (None before the server planned them)."""
        total = self.plan.get("total_steps")
        return int(total) if isinstance(total, int | float) else None

    def artifact(self, artifact_format: str) -> Artifact | None:
        """The stored file of this format, if the run has one."""
        return next((artifact for artifact in self.artifacts if artifact.format == artifact_format), None)


class SweepProgress(BaseModel):
    """How many of a sweep's points stand where; `missing`: the point's run was deleted."""

    model_config = ConfigDict(extra="allow")

    total: int
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    missing: int = 0


class SweepPoint(BaseModel):
    """One point of a sweep: its variant, axis values and seed, and the run that stands for it (None: deleted)."""

    model_config = ConfigDict(extra="allow")

    index: int
    variant: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    seed: int
    run_id: int | None = None
    status: str


class Sweep(BaseModel):
    """A sweep as `GET /api/sweeps/{id}` shows it; `runs` is filled by `Client.sweep`, empty after a submit."""

    model_config = ConfigDict(extra="allow")

    id: int
    name: str = ""
    status: str
    progress: SweepProgress
    spec: dict[str, Any] = Field(default_factory=dict)
    tag: str = ""
    group_by: list[str] = Field(default_factory=list)
    points: list[SweepPoint] = Field(default_factory=list)
    runs: list[Run] = Field(default_factory=list)
    created_at: datetime | None = None
    cancelled_at: datetime | None = None
    owner: str | None = None

    @property
    def finished(self) -> bool:
        """True once no point is queued or running."""
        return self.status != "running"


class Upload(BaseModel):
    """An uploaded `.keras` model or `.npz` data set."""

    model_config = ConfigDict(extra="allow")

    id: int
    kind: str
    original_filename: str
    size_bytes: int
    sha256: str
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    owner: str | None = None


class Series(TypedDict):
    """One metric's points: parallel lists; a value is None where the logged value was not finite."""

    steps: list[int]
    values: list[float | None]
    wall_times: list[float]


@dataclass(frozen=True)
class Download:
    """A file written by `Client.download`, its sha256 checked against the server's record."""

    path: Path
    size_bytes: int
    sha256: str
    resumed_from: int  # bytes already on disk from an earlier, cut download (0: downloaded whole)


class GroupComparison(BaseModel):
    """Mean of group a minus group b on a final metric (`GET /api/groups/compare`): Welch's 95% interval,
    p-value, n per side, and the sentence the dashboard shows."""

    model_config = ConfigDict(extra="allow")

    a: str
    b: str
    metric: str
    n_a: int
    n_b: int
    failed_a: int
    failed_b: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    resolved: bool
    sentence: str
