"""The run spec: what a user submits, validated with tfmot's own messages.

Pure pydantic, no database and no TensorFlow: the API validates and resolves a
spec into a `RunPlan`, the worker trains from the stored plan.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.catalog import DATASETS, MODELS, choices


def _check_sparsity(value: float, name: str) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in range [0,1)")
    return value


class _ScheduleBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    begin_step: int = Field(0, description="Step at which pruning begins (tfmot's begin_step).")
    end_step: int = Field(-1, description="Last step at which pruning may happen; -1 means the last step of training.")
    frequency: int = Field(100, description="Masks are updated every `frequency` steps within the window.")

    @field_validator("begin_step")
    @classmethod
    def _begin_step(cls, value: int) -> int:
        if value < 0:
            raise ValueError("begin_step should be >= 0")
        return value

    @field_validator("end_step")
    @classmethod
    def _end_step(cls, value: int) -> int:
        if value != -1 and value < 0:
            raise ValueError("end_step can be -1 or >= 0")
        return value

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("frequency should be > 0")
        return value

    @model_validator(mode="after")
    def _window(self) -> _ScheduleBase:
        if self.end_step != -1 and self.begin_step >= self.end_step:
            raise ValueError(
                f"begin_step ({self.begin_step}) should be < end_step ({self.end_step}); "
                "use end_step -1 to prune until the last step of training"
            )
        return self


class ConstantSchedule(_ScheduleBase):
    """tfmot `ConstantSparsity`: prune to one sparsity at every pruning step."""

    kind: Literal["constant"] = "constant"
    target_sparsity: float = Field(0.5, description="Fraction of weights set to zero, in [0, 1).")

    @field_validator("target_sparsity")
    @classmethod
    def _target(cls, value: float) -> float:
        return _check_sparsity(value, "target_sparsity")


class PolynomialSchedule(_ScheduleBase):
    """tfmot `PolynomialDecay`: sparsity rises from initial to final along a power curve."""

    kind: Literal["polynomial"] = "polynomial"
    initial_sparsity: float = Field(0.0, description="Sparsity at begin_step, in [0, 1).")
    final_sparsity: float = Field(0.5, description="Sparsity at end_step, in [0, 1).")
    power: float = Field(3, description="Exponent of the decay curve.")

    @field_validator("initial_sparsity")
    @classmethod
    def _initial(cls, value: float) -> float:
        return _check_sparsity(value, "initial_sparsity")

    @field_validator("final_sparsity")
    @classmethod
    def _final(cls, value: float) -> float:
        return _check_sparsity(value, "final_sparsity")

    @field_validator("power")
    @classmethod
    def _power(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError("power must be a positive number")
        return value


Schedule = Annotated[ConstantSchedule | PolynomialSchedule, Field(discriminator="kind")]
# A schedule whose end_step has been resolved to an integer step (never -1).
ResolvedSchedule = ConstantSchedule | PolynomialSchedule


class RunSpec(BaseModel):
    """A pruning run as submitted: data, model, training settings and schedule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        "",
        max_length=200,
        description="Free text; defaults to a name built from the spec.",
        json_schema_extra={"group": "data/model"},
    )
    dataset: str = Field(
        "digits", description="A dataset from GET /api/datasets.", json_schema_extra={"group": "data/model"}
    )
    model: str = Field("mlp", description="A model from GET /api/models.", json_schema_extra={"group": "data/model"})
    epochs: int = Field(5, ge=1, le=1000, json_schema_extra={"group": "training"})
    batch_size: int = Field(32, ge=1, le=65536, json_schema_extra={"group": "training"})
    learning_rate: float = Field(1e-3, gt=0, le=10, json_schema_extra={"group": "training"})
    validation_split: float = Field(0.1, ge=0, lt=1, json_schema_extra={"group": "training"})
    seed: int = Field(0, ge=0, le=2**31 - 1, json_schema_extra={"group": "training"})
    schedule: Schedule = Field(default_factory=PolynomialSchedule, json_schema_extra={"group": "schedule"})

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        if value not in DATASETS:
            raise ValueError(f"unknown dataset {value!r}; choose one of: {choices(DATASETS)}")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; choose one of: {choices(MODELS)}")
        return value

    def display_name(self) -> str:
        return self.name or f"{self.schedule.kind} {self.model} on {self.dataset}"
