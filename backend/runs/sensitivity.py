"""Turn a succeeded sensitivity run's table into a ready-to-submit pruning spec."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from prunelab.core.errors import InvalidSpec, RunStateConflict
from prunelab.core.plans import resolve_plan
from prunelab.core.proposals import ProposalError, propose
from prunelab.core.recipes import PretrainedRecipe, SensitivityRecipe, UploadedModelRecipe
from prunelab.core.schedule_math import with_final_sparsity
from prunelab.core.specs import MByNSparsity, RunSpec, UnstructuredSparsity
from prunelab.server.models import RunStatus
from prunelab.server.runs.service import get_run


class ProposalOut(BaseModel):
    run_id: int
    target_sparsity: float
    baseline_accuracy: float
    layer_sparsities: dict[str, float]
    predicted_accuracy_drop: float
    spec: RunSpec


def sensitivity_proposal(
    session: Session, run_id: int, target_sparsity: float, max_accuracy_drop: float | None
) -> ProposalOut:
    """Per-layer targets with the given parameter-weighted mean, and the spec that prunes to them."""
    run = get_run(session, run_id)
    if run.source != "prunelab":
        raise RunStateConflict(f"run {run_id} is an external run, not a sensitivity sweep")
    spec = RunSpec.model_validate(run.spec)
    if not isinstance(spec.recipe, SensitivityRecipe):
        raise RunStateConflict(f"run {run_id} is a {spec.recipe.kind} run, not a sensitivity sweep")
    table: dict[str, Any] | None = (run.summary or {}).get("sensitivity")
    if run.status != RunStatus.SUCCEEDED or table is None:
        raise RunStateConflict(f"run {run_id} is {run.status}; a proposal needs a succeeded sweep")
    try:
        proposal = propose(table["layers"], table["baseline_accuracy"], table["params"], target_sparsity)
    except ProposalError as error:
        raise InvalidSpec(("target_sparsity",), str(error)) from None
    if max_accuracy_drop is not None and proposal.predicted_accuracy_drop > max_accuracy_drop:
        raise InvalidSpec(
            ("max_accuracy_drop",),
            f"the least predicted accuracy drop at target_sparsity {target_sparsity} is "
            f"{proposal.predicted_accuracy_drop:.4f}, above max_accuracy_drop ({max_accuracy_drop}); "
            "lower target_sparsity or allow a larger drop",
        )
    proposed = _proposed_spec(run_id, spec, proposal.layer_sparsities, target_sparsity)
    return ProposalOut(
        run_id=run_id,
        target_sparsity=target_sparsity,
        baseline_accuracy=table["baseline_accuracy"],
        layer_sparsities=proposal.layer_sparsities,
        predicted_accuracy_drop=proposal.predicted_accuracy_drop,
        spec=proposed,
    )


def _proposed_spec(run_id: int, spec: RunSpec, targets: dict[str, float], target_sparsity: float) -> RunSpec:
    """The sweep's spec, pruning the swept model (its base run, its upload, or the model it trained)."""
    sweep = spec.recipe
    assert isinstance(sweep, SensitivityRecipe)
    recipe: PretrainedRecipe | UploadedModelRecipe
    if sweep.upload_id is not None:
        recipe = UploadedModelRecipe(upload_id=sweep.upload_id)
    else:
        recipe = PretrainedRecipe(base_run_id=sweep.base_run_id or run_id)
    structure = UnstructuredSparsity() if isinstance(spec.structure, MByNSparsity) else spec.structure
    proposed = RunSpec.model_validate(
        {
            **spec.model_dump(),
            "name": f"{spec.display_name()[:150]} proposal at {target_sparsity:g}",
            "recipe": recipe.model_dump(),
            "structure": structure.model_dump(),
            "schedule": with_final_sparsity(spec.schedule, target_sparsity).model_dump(),
            "layer_targets": targets,
        }
    )
    if sweep.upload_id is None:
        resolve_plan(proposed)  # the spec is submittable as it is
    return proposed
