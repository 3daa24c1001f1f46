"""Response shapes of the runs API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from prunelab.core.external import ExternalRunSpec
from prunelab.core.plans import RunPlan
from prunelab.core.specs import PlainText, RunSpec


class ArtifactOut(BaseModel):
    format: str
    size_bytes: int
    zip_size_bytes: int
    sha256: str
    url: str


class RunOut(BaseModel):
    id: int
    name: str
    status: str
    source: str = Field(
        "prunelab", description="'prunelab': trained by PruneLab's worker; otherwise what logged this external run."
    )
    spec: RunSpec | ExternalRunSpec = Field(description="A queued run's spec, or what is known of an external run.")
    model_name: str = Field(
        description="What the model column shows: the zoo model's name, or the uploaded file's name for a run of "
        "an uploaded model."
    )
    plan: RunPlan
    summary: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    step: int | None
    parent_run_id: int | None = None  # the dense run this run starts from (pretrained)
    latest: dict[str, float | None]
    artifacts: list[ArtifactOut]
    tags: list[str]
    note: str
    owner: str | None = Field(None, description="Who submitted the run; null before PruneLab had users.")
    queue_position: int | None = Field(
        None, description="A queued run's place in the queue (1: next); only on one run's page and its events."
    )
    waiting: str | None = Field(
        None, description="Why a queued run does not start (no worker listening); only on one run's page."
    )


class RunsPage(BaseModel):
    """A page of runs; pass `next_cursor` back as `cursor` for the next (null: this is the last page)."""

    runs: list[RunOut]
    next_cursor: str | None
    total: int = Field(description="How many runs the filter matches in all (counted with this page).")


Tag = Annotated[PlainText, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[^,\s]+$")]


class RunPatch(BaseModel):
    """What a user may change on a run: its tags and its note."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] | None = Field(None, max_length=20, description="Short labels without spaces or commas.")
    note: PlainText | None = Field(None, max_length=2000, description="Free text.")


class MaskEventOut(BaseModel):
    step: int
    url: str = Field(description="A PNG of the layer's mask at this step: black where weights remain.")


class MaskLayerOut(BaseModel):
    name: str
    shape: list[int]
    events: list[MaskEventOut]


class MasksOut(BaseModel):
    layers: list[MaskLayerOut]


class ExternalFinish(BaseModel):
    """How the client of an external run ends it."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["succeeded", "failed"]
    error: PlainText | None = Field(None, max_length=10_000, description="Why it failed, shown on the run page.")
    summary: dict[str, Any] | None = Field(
        None, description="Final figures (test_accuracy, measured_sparsity, coverage...), merged into the run's."
    )


class PointsIn(BaseModel):
    """A batch of metric points; each is checked on its own and a rejected one does not stop the others."""

    points: list[Any] = Field(
        max_length=100_000,
        description="[{key, step, value, wall_time?}]: step a whole number >= 0, value a number (NaN/inf: a gap), "
        "wall_time seconds since the run started (default: now). Beyond 10,000 points each is rejected.",
    )


class RejectedPointOut(BaseModel):
    index: int = Field(description="Position of the point in the batch.")
    key: str | None
    step: int | None
    error: str


class PointsOut(BaseModel):
    accepted: int = Field(description="Points stored, or already stored by an earlier delivery (the first wins).")
    rejected: list[RejectedPointOut]
    cancel_requested: bool = Field(description="Someone cancelled the run on the dashboard: the client should stop.")
