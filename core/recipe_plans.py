"""The step axis and checks of each recipe: how many phases a run has and how long each is."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from prunelab.core.errors import InvalidSpec
from prunelab.core.recipes import LotteryTicketRecipe, SensitivityRecipe
from prunelab.core.scope import LayerFacts, decide_layers
from prunelab.core.specs import RunSpec, Schedule, UnstructuredSparsity


class LayerSchedule(BaseModel):
    """One pruned layer's schedule (the spec's, ending at the layer's target) and its prunable weight count."""

    schedule: Schedule
    prunable_params: int


@dataclass
class RecipePlan:
    prunes: bool
    phase_steps: list[int]
    warnings: list[str] = field(default_factory=list)
    rewind_step: int | None = None
    sensitivity_layers: list[str] | None = None

    @property
    def training_steps(self) -> int:
        return self.phase_steps[0]


def resolve_recipe(spec: RunSpec, layers: list[LayerFacts] | None, steps_per_epoch: int) -> RecipePlan:
    """Phases and checks of the spec's recipe, then one phase per compress stage that trains."""
    plan = _resolve_recipe(spec, layers, steps_per_epoch)
    if not spec.compress:
        return plan
    if isinstance(spec.recipe, SensitivityRecipe):
        raise InvalidSpec(("compress",), "a sensitivity sweep exports no model to compress; remove compress")
    for stage in spec.compress:
        if stage.kind in ("cluster", "qat"):
            plan.phase_steps.append(stage.epochs * steps_per_epoch)  # type: ignore[union-attr]
    if not plan.prunes and any(getattr(stage, "scheme", None) == "pqat" for stage in spec.compress):
        plan.warnings.append("qat scheme pqat preserves sparsity, and this run prunes nothing: it trains as default")
    return plan


def _resolve_recipe(spec: RunSpec, layers: list[LayerFacts] | None, steps_per_epoch: int) -> RecipePlan:
    """Phases and checks of the spec's recipe; raises InvalidSpec naming the recipe field at fault."""
    recipe = spec.recipe
    training_steps = spec.epochs * steps_per_epoch
    if recipe.kind in ("dense", "sensitivity") and spec.layer_targets is not None:
        raise InvalidSpec(("layer_targets",), f"a {recipe.kind} run prunes nothing; remove layer_targets")
    if recipe.kind == "dense":
        ignored = "no pruning wrappers: the schedule and structure are ignored"
        return RecipePlan(prunes=False, phase_steps=[training_steps], warnings=[f"dense recipe: {ignored}"])
    if isinstance(recipe, LotteryTicketRecipe):
        if recipe.rewind_epoch >= spec.epochs:
            raise InvalidSpec(
                ("recipe", "rewind_epoch"),
                f"rewind_epoch ({recipe.rewind_epoch}) must be before the end of pruning (epochs = {spec.epochs}); "
                "use 0 to rewind to the initial weights",
            )
        return RecipePlan(
            prunes=True,
            phase_steps=[training_steps, recipe.retrain_epochs * steps_per_epoch],
            rewind_step=recipe.rewind_epoch * steps_per_epoch,
        )
    if isinstance(recipe, SensitivityRecipe):
        return _sensitivity(spec, recipe, layers, training_steps)
    return RecipePlan(prunes=True, phase_steps=[training_steps])


def _sensitivity(
    spec: RunSpec, recipe: SensitivityRecipe, layers: list[LayerFacts] | None, training_steps: int
) -> RecipePlan:
    if recipe.base_run_id is not None or recipe.upload_id is not None:
        training_steps = 0  # the sweep starts from a trained model
    warnings = []
    if not isinstance(spec.structure, UnstructuredSparsity):
        warnings.append("sensitivity sweeps prune unstructured (by weight magnitude); the structure is ignored")
    swept: list[str] | None = recipe.layers
    if layers is not None:
        pruned = [decision.name for decision in decide_layers(layers, spec) if decision.wrapped]
        for name in recipe.layers or []:
            if name not in pruned:
                raise InvalidSpec(
                    ("recipe", "layers"),
                    f"layer {name!r} is not one the scope prunes; prunable layers in scope: {', '.join(pruned)}",
                )
        if not pruned:
            raise InvalidSpec(("scope",), "the scope selects no layer to sweep")
        swept = recipe.layers or pruned
    elif swept is None:
        warnings.append("the swept layers are decided by the worker from the uploaded model")
    evaluations = len(swept or []) * len(recipe.sparsities)
    return RecipePlan(
        prunes=False, phase_steps=[training_steps, evaluations], warnings=warnings, sensitivity_layers=swept
    )
