"""Which layers a run prunes, and why the others stay dense: one rule for the API and the worker.

The API applies it to the zoo's layer facts (`core.architectures`) to refuse a spec
before it is queued; the worker applies it to the real Keras layers to wrap them and
to write the coverage report, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from prunelab.core.registry import NOT_PRUNABLE, prunable_classes
from prunelab.core.specs import BlockSparsity, RunSpec

NO_WEIGHTS = "no weights"
NOT_IN_REGISTRY = NOT_PRUNABLE["tfmot"]
EXCLUDED_BY_SCOPE = "excluded by scope"
FIRST_KEPT_DENSE = "first layer kept dense"
LAST_KEPT_DENSE = "last layer kept dense"
DENSE_RUN = "dense run: nothing is pruned"

# Built-in layers with weights that the keras engine's registry does not list (recurrent, attention, wrappers).
KERAS_ENGINE_UNPRUNABLE = frozenset(
    {"Bidirectional", "GRU", "LSTM", "MultiHeadAttention", "SimpleRNN", "TimeDistributed"}
)


@dataclass(frozen=True)
class LayerFacts:
    """What the scope rule needs of a layer."""

    name: str
    class_name: str
    params: int  # every weight of the layer, biases and non-trainable ones included
    supported: bool  # the engine can wrap it (its registry in core.registry, or tfmot's PrunableLayer)
    prunable_shapes: tuple[tuple[int, ...], ...]  # the weights the engine prunes (kernels, never biases)

    @property
    def prunable_params(self) -> int:
        total = 0
        for shape in self.prunable_shapes:
            size = 1
            for dimension in shape:
                size *= dimension
            total += size
        return total


@dataclass(frozen=True)
class LayerDecision:
    name: str
    class_name: str
    wrapped: bool
    reason: str | None  # why the layer stays dense; None when wrapped


@dataclass(frozen=True)
class Problem:
    """Why a spec cannot prune a model, with the spec field to change."""

    field: tuple[str, ...]
    message: str


def decide_layers(layers: list[LayerFacts], spec: RunSpec) -> list[LayerDecision]:
    """Wrap each layer with prunable weights that the scope selects; say why every other layer stays dense."""
    scope = spec.scope
    candidates = [layer.name for layer in layers if layer.supported and layer.prunable_shapes]
    first, last = (candidates[0], candidates[-1]) if candidates else (None, None)
    decisions = []
    for layer in layers:
        if layer.params == 0:
            reason: str | None = NO_WEIGHTS
        elif not layer.supported or not layer.prunable_shapes:
            reason = NOT_PRUNABLE[spec.engine]
        elif scope.keep_first_dense and layer.name == first:
            reason = FIRST_KEPT_DENSE
        elif scope.keep_last_dense and layer.name == last:
            reason = LAST_KEPT_DENSE
        elif (scope.layer_types is not None and layer.class_name not in scope.layer_types) or (
            scope.layer_names is not None and layer.name not in scope.layer_names
        ):
            reason = EXCLUDED_BY_SCOPE
        else:
            reason = None
        decisions.append(LayerDecision(layer.name, layer.class_name, reason is None, reason))
    return decisions


def keras_engine_class_problems(class_names: list[str], spec: RunSpec) -> list[Problem]:
    """An uploaded Keras 3 model's layers (class names, from its config) that the scope selects and the engine cannot
    prune; by class, since an upload records no layer names (a scope by layer_names is checked by the worker)."""
    if spec.scope.layer_names is not None:
        return []
    selected = spec.scope.layer_types
    refused = sorted(
        {name for name in class_names if name in KERAS_ENGINE_UNPRUNABLE and (selected is None or name in selected)}
    )
    if not refused:
        return []
    prunable = sorted(prunable_classes("keras") & set(class_names))
    return [
        Problem(
            ("scope",),
            f"the keras engine cannot prune {', '.join(refused)} layers, and the scope selects them; set "
            f"scope.layer_types to the layers to prune (this model's prunable types: {', '.join(prunable) or 'none'})",
        )
    ]


def _selected_by_filters(layer: LayerFacts, spec: RunSpec) -> bool:
    scope = spec.scope
    by_type = scope.layer_types is None or layer.class_name in scope.layer_types
    by_name = scope.layer_names is None or layer.name in scope.layer_names
    return by_type and by_name


def scope_problems(layers: list[LayerFacts], spec: RunSpec) -> list[Problem]:
    """What stops this spec from pruning these layers, each with the field to change."""
    problems = []
    by_name = {layer.name: layer for layer in layers}
    for name in spec.scope.layer_names or []:
        layer = by_name.get(name)
        if layer is None:
            problems.append(
                Problem(
                    ("scope", "layer_names"),
                    f"the model has no layer named {name!r}; its layers: {', '.join(by_name)}",
                )
            )
        elif not (layer.supported and layer.prunable_shapes):
            problems.append(
                Problem(
                    ("scope", "layer_names"),
                    f"layer {name!r} ({layer.class_name}) is {NOT_PRUNABLE[spec.engine]}; remove it from "
                    "scope.layer_names",
                )
            )
    for layer in layers:
        if layer.params and not layer.supported and _selected_by_filters(layer, spec):
            problems.append(
                Problem(
                    ("scope",),
                    f"layer {layer.name!r} ({layer.class_name}) is {NOT_PRUNABLE[spec.engine]} and the "
                    f"{spec.engine} engine cannot wrap it; set scope.layer_types or scope.layer_names to the layers "
                    "to prune",
                )
            )
    decisions = decide_layers(layers, spec)
    wrapped = [by_name[decision.name] for decision in decisions if decision.wrapped]
    if not wrapped:
        prunable = sorted({layer.class_name for layer in layers if layer.supported and layer.prunable_shapes})
        problems.append(
            Problem(
                ("scope",),
                "the scope selects no layer to prune; prunable layer types of this model: "
                f"{', '.join(prunable) or 'none'}",
            )
        )
    if isinstance(spec.structure, BlockSparsity) and spec.structure.block_size != (1, 1):
        for layer in wrapped:
            if any(len(shape) != 2 for shape in layer.prunable_shapes):
                problems.append(
                    Problem(
                        ("structure", "block_size"),
                        f"block sparsity needs 2-D kernels, and layer {layer.name!r} ({layer.class_name}) has a "
                        f"{len(layer.prunable_shapes[0])}-D one; set scope.layer_types to ['Dense'] or leave "
                        "that layer out of scope.layer_names",
                    )
                )
    return problems
