"""Recipes: where a run's starting weights come from and what it does with them, as spec objects.

Pure pydantic like `core.specs`: checks that need the plan or the database live in
`core.plans.resolve_plan` and `backend.runs.links`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database


class FromScratchRecipe(BaseModel):
    """Random initialisation, pruned while it trains (the default)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["from_scratch"] = "from_scratch"


class DenseRecipe(BaseModel):
    """Train without any pruning wrapper: a dense baseline (the schedule and structure are ignored)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["dense"] = "dense"


class PretrainedRecipe(BaseModel):
    """Start from a trained dense model, then prune it with more training (the tfmot tutorials' recipe)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["pretrained"] = "pretrained"
    dense_epochs: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Train a dense baseline for this many epochs first, logged as its own linked run.",
    )
    base_run_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Or start from this succeeded dense run (same dataset and model)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> PretrainedRecipe:
        if (self.dense_epochs is None) == (self.base_run_id is None):
            raise ValueError("give exactly one of recipe.dense_epochs or recipe.base_run_id")
        return self


class UploadedModelRecipe(BaseModel):
    """Prune a Keras model uploaded with POST /api/models (loaded with safe_mode=True)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["uploaded_model"] = "uploaded_model"
    upload_id: int = Field(ge=1, le=MAX_ID, description="The id POST /api/models returned for the .keras file.")


class LotteryTicketRecipe(BaseModel):
    """Frankle et al.: prune while training, rewind surviving weights, keep the mask fixed and retrain."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["lottery_ticket"] = "lottery_ticket"
    rewind_epoch: int = Field(
        0, ge=0, description="Rewind to the weights at initialisation (0) or after this many epochs of pruning."
    )
    retrain_epochs: int = Field(1, ge=1, le=1000, description="Epochs of retraining with the mask fixed.")


DEFAULT_SENSITIVITIES = [0.25, 0.5, 0.75, 0.9]


class SensitivityRecipe(BaseModel):
    """Prune one layer at a time to each sparsity without retraining and record the accuracy."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["sensitivity"] = "sensitivity"
    sparsities: list[float] = Field(
        default=list(DEFAULT_SENSITIVITIES),  # a plain default, so the JSON schema (and the form) shows it
        description="Sparsities each layer is pruned to, one at a time, each in [0, 1).",
    )
    layers: list[str] | None = Field(None, description="Layers to sweep; null: every layer the scope prunes.")
    base_run_id: int | None = Field(
        None,
        ge=1,
        le=MAX_ID,
        description="Sweep this succeeded dense run's model, not one trained for `epochs`.",
    )
    upload_id: int | None = Field(None, ge=1, le=MAX_ID, description="Or sweep this uploaded model.")

    @field_validator("sparsities")
    @classmethod
    def _sparsities(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("sparsities needs at least one value")
        for index, sparsity in enumerate(value):
            if not 0.0 <= sparsity < 1.0:
                raise ValueError(f"sparsities[{index}] ({sparsity}) must be in range [0,1)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _one_model_source(self) -> SensitivityRecipe:
        if self.base_run_id is not None and self.upload_id is not None:
            raise ValueError("give recipe.base_run_id or recipe.upload_id, not both")
        return self


Recipe = Annotated[
    FromScratchRecipe | DenseRecipe | PretrainedRecipe | UploadedModelRecipe | LotteryTicketRecipe | SensitivityRecipe,
    Field(discriminator="kind"),
]
AnyRecipe = (
    FromScratchRecipe | DenseRecipe | PretrainedRecipe | UploadedModelRecipe | LotteryTicketRecipe | SensitivityRecipe
)
RECIPE_KINDS = ("from_scratch", "dense", "pretrained", "uploaded_model", "lottery_ticket", "sensitivity")


def base_run_id(recipe: AnyRecipe) -> int | None:
    """The dense run whose stripped model this recipe starts from, if any."""
    return getattr(recipe, "base_run_id", None)


def upload_id(recipe: AnyRecipe) -> int | None:
    """The uploaded model this recipe starts from, if any."""
    return getattr(recipe, "upload_id", None)
