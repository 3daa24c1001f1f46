"""Wrap the layers a spec selects and check a model can be pruned at all."""

from __future__ import annotations

from typing import Any

from prunelab.core.plans import RunPlan
from prunelab.core.scope import DENSE_RUN, LayerDecision, LayerFacts, Problem, decide_layers, scope_problems
from prunelab.core.specs import BlockSparsity, MByNSparsity, RunSpec
from prunelab.worker.training.tf import PruneRegistry as Registry
from prunelab.worker.training.tf import keras, tfmot
from prunelab.worker.training.tfmot_schedules import tfmot_schedule


def prunable_weights(layer: keras.layers.Layer) -> list[Any]:
    """The weights tfmot prunes in `layer` (its registry's list, or a PrunableLayer's own)."""
    if isinstance(layer, tfmot.sparsity.keras.PrunableLayer) or hasattr(layer, "get_prunable_weights"):
        return list(layer.get_prunable_weights())
    if layer.__class__ in Registry._LAYERS_WEIGHTS_MAP:
        return [_nested_attribute(layer, name) for name in Registry._LAYERS_WEIGHTS_MAP[layer.__class__]]
    # RNN and attention layers: the registry prunes their kernels.
    return [weight for weight in layer.trainable_weights if "kernel" in weight.name]


def _prunable_shapes(layer: keras.layers.Layer) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(weight.shape) for weight in prunable_weights(layer))


def _nested_attribute(layer: keras.layers.Layer, dotted: str) -> Any:
    value: Any = layer
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def layer_facts(model: keras.Model) -> list[LayerFacts]:
    """The scope rule's view of a built model's layers (the input layer excluded)."""
    facts = []
    for layer in model.layers:
        supported = (
            Registry.supports(layer)
            or isinstance(layer, tfmot.sparsity.keras.PrunableLayer)
            or hasattr(layer, "get_prunable_weights")
        )
        shapes = _prunable_shapes(layer) if supported else ()
        facts.append(LayerFacts(layer.name, type(layer).__name__, int(layer.count_params()), supported, shapes))
    return facts


def preflight_model(model: object, spec: RunSpec) -> list[Problem]:
    """Why tfmot could not prune `model` under `spec` (empty when it can), each with what to change."""
    if not isinstance(model, keras.Model):
        module = type(model).__module__
        if module.startswith("keras"):
            return [
                Problem(
                    ("model",),
                    "this is a Keras 3 model; tfmot prunes tf-keras (Keras 2) models only: "
                    "rebuild it with tf_keras or save it as .h5 and load it with tf_keras",
                )
            ]
        return [Problem(("model",), f"expected a tf-keras Model, got {type(model).__name__}")]
    if not isinstance(model, keras.Sequential) and not model._is_graph_network:
        return [
            Problem(
                ("model",),
                "subclassed models cannot be pruned by tfmot; rebuild it as a Sequential or functional model",
            )
        ]
    return scope_problems(layer_facts(model), spec)


def structure_arguments(spec: RunSpec) -> dict[str, Any]:
    """`prune_low_magnitude` keyword arguments for the spec's structure."""
    structure = spec.structure
    if isinstance(structure, BlockSparsity):
        return {"block_size": tuple(structure.block_size), "block_pooling_type": structure.block_pooling_type}
    if isinstance(structure, MByNSparsity):
        return {"sparsity_m_by_n": (structure.m, structure.n)}
    return {}


def prune_model(model: keras.Model, spec: RunSpec, plan: RunPlan) -> tuple[keras.Model, list[LayerDecision]]:
    """`model` with the scope's layers wrapped (weights kept, as prune_low_magnitude keeps them)."""
    problems = preflight_model(model, spec)
    if problems:
        raise ValueError("; ".join(f"{'.'.join(problem.field)}: {problem.message}" for problem in problems))
    decisions = decide_layers(layer_facts(model), spec)
    wrapped = {decision.name for decision in decisions if decision.wrapped}
    schedule = tfmot_schedule(plan.schedule)
    # layer_targets: each layer its own schedule object, the plan's schedule ending at the layer's target.
    layer_schedules = {name: tfmot_schedule(layer.schedule) for name, layer in (plan.layer_schedules or {}).items()}

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in wrapped:
            return tfmot.sparsity.keras.prune_low_magnitude(
                layer, pruning_schedule=layer_schedules.get(layer.name, schedule), **structure_arguments(spec)
            )
        return layer

    return keras.models.clone_model(model, clone_function=wrap), decisions


def dense_decisions(model: keras.Model, spec: RunSpec) -> list[LayerDecision]:
    """Coverage decisions of a run that wraps nothing: the scope's reason, or that the run is dense."""
    return [
        LayerDecision(decision.name, decision.class_name, False, decision.reason or DENSE_RUN)
        for decision in decide_layers(layer_facts(model), spec)
    ]
