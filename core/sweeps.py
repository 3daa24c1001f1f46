"""Sweeps: a base run spec, named variants, axes and seeds, expanded into the run specs of a grid.

Pure pydantic + numpy: the API validates and expands a sweep before it stores anything (all or nothing),
and the same expansion runs anywhere a sweep is previewed.

A point's spec is built in this order, later steps winning:
1. `base`, a partial run spec;
2. the point's variant, a partial spec merged into it (an object with another `kind` than the base's replaces
   it instead of merging into it: a constant variant's schedule drops a polynomial base's fields; a base
   object without a `kind`, such as `{"frequency": 41}`, is merged into every variant's);
3. each axis value, set at its dotted path (`learning_rate`, `schedule.frequency`, `structure`);
4. the seed.

The `sparsity` axis sets the field that means "how sparse at the end" for the point's schedule:
`target_sparsity` of a constant schedule, `final_sparsity` of a polynomial one, and for a piecewise
schedule every point's sparsity scaled by `value / last sparsity` (the curve keeps its shape and ends at
`value`; its last point must be above 0).
"""

from __future__ import annotations

import itertools
import json
import math
import types
import typing
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prunelab.core.errors import InvalidSpec
from prunelab.core.specs import SCHEDULE_KINDS, UNION_TAGS, PlainText, RunSpec

SPARSITY_AXIS = "sparsity"
SPARSITY_FIELDS = {"constant": "target_sparsity", "polynomial": "final_sparsity"}
DEFAULT_SCHEDULE_KIND = "polynomial"  # RunSpec's default schedule
MAX_REPORTED_POINTS = 10  # a 422 lists at most this many bad points
MAX_GRID = 2**62  # random sampling draws indices of the grid as int64
NAME_PATTERN = r"^[A-Za-z0-9_.+-]{1,40}$"  # variant names become tags: no spaces, commas or colons


class InvalidSweep(InvalidSpec):
    """A sweep that cannot be expanded, or whose points are not all valid run specs; `problems` lists each."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        super().__init__(problems[0][0], problems[0][1])
        self.problems = problems


class SweepAxis(BaseModel):
    """One varied field: a dotted run spec path (or `sparsity`) and the values it takes."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(
        min_length=1,
        max_length=200,
        description="A run spec field, dotted (`learning_rate`, `schedule.frequency`, `structure`), or `sparsity`: "
        "the schedule's final sparsity, whatever its kind.",
    )
    values: list[Any] = Field(min_length=1, max_length=1000, description="The values the field takes, in order.")


class SweepSpec(BaseModel):
    """A sweep as submitted: what every run shares, what varies, and the seeds each point is run with."""

    model_config = ConfigDict(extra="forbid")

    name: PlainText = Field("", max_length=200, description="Free text; shown on the sweep's page.")
    base: dict[str, Any] = Field(default_factory=dict, description="A partial run spec every point starts from.")
    variants: dict[Annotated[str, Field(pattern=NAME_PATTERN)], dict[str, Any]] = Field(
        default_factory=dict,
        max_length=100,
        description='Named partial run specs merged over `base`, e.g. {"constant": {"schedule": {"kind": '
        '"constant"}}}; none: one unnamed variant.',
    )
    axes: list[SweepAxis] = Field(default_factory=list, max_length=16, description="Varied fields, crossed as a grid.")
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(
        default_factory=lambda: [0], min_length=1, max_length=1000, description="Each point runs once per seed."
    )
    mode: Literal["grid", "random"] = Field(
        "grid", description="grid: every combination; random: `samples` combinations drawn from the grid."
    )
    samples: int | None = Field(
        None, ge=1, description="random: how many combinations (variant x axis values) to draw; each runs every seed."
    )
    sample_seed: int = Field(0, ge=0, le=2**31 - 1, description="random: the draw is reproducible from this seed.")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("seeds must be distinct")
        return value

    @model_validator(mode="after")
    def _mode(self) -> SweepSpec:
        if self.mode == "random" and self.samples is None:
            raise ValueError("mode random needs samples: how many combinations to draw from the grid")
        if self.mode == "grid" and self.samples is not None:
            raise ValueError("samples applies to mode random only; remove it or set mode: random")
        return self

    def group_by(self) -> list[str]:
        """The sweep's default grouping: every axis but the seed, as the group fields of `GET /api/groups`
        (each point's runs carry `variant:<name>` and `<path>:<value>` tags)."""
        return (["tag:variant"] if self.variants else []) + [f"tag:{axis.path}" for axis in self.axes]

    def combinations(self) -> int:
        """Variants times the product of the axes' lengths (before seeds and sampling)."""
        return max(len(self.variants), 1) * math.prod(len(axis.values) for axis in self.axes)

    def run_count(self) -> int:
        """How many runs the sweep makes."""
        chosen = self.combinations() if self.mode == "grid" else min(self.samples or 0, self.combinations())
        return chosen * len(self.seeds)


class SweepPoint(BaseModel):
    """One run of a sweep: where it sits in the grid and its full, validated spec."""

    index: int
    variant: str | None
    values: dict[str, Any] = Field(description="Axis path -> this point's value.")
    seed: int
    spec: RunSpec

    def tags(self, sweep_id: int) -> list[str]:
        """`sweep:<id>`, `variant:<name>`, one `<path>:<value>` per axis and `seed:<n>`: filter with tag:"..."."""
        tags = [f"sweep:{sweep_id}"]
        if self.variant is not None:
            tags.append(f"variant:{self.variant}")
        tags.extend(f"{path}:{tag_value(value)}" for path, value in self.values.items())
        tags.append(f"seed:{self.seed}")
        return tags

    def label(self) -> str:
        return point_label(self.variant, self.values, self.seed)


def point_label(variant: str | None, values: dict[str, Any], seed: int) -> str:
    """`variant constant, sparsity 0.875, seed 2`: a point in words, for names and messages."""
    parts = ([f"variant {variant}"] if variant is not None else []) + [
        f"{path} {tag_value(value)}" for path, value in values.items()
    ]
    return ", ".join([*parts, f"seed {seed}"])


def tag_value(value: Any) -> str:
    """An axis value as tag text: a number or word as written, an object by its `kind`, else compact JSON."""
    if isinstance(value, dict) and isinstance(value.get("kind"), str):
        return str(value["kind"])
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def check_sweep(sweep: SweepSpec, max_runs: int) -> None:
    """Raise InvalidSweep for an axis path that is not a spec field, or a sweep larger than `max_runs`."""
    problems: list[tuple[tuple[str, ...], str]] = []
    seen: dict[str, int] = {}
    for index, axis in enumerate(sweep.axes):
        where = ("axes", str(index))  # "path" would read as the URL path in a 422's field
        if axis.path in seen:
            problems.append((where, f"axis path {axis.path!r} repeats axes[{seen[axis.path]}]; give each path once"))
        seen.setdefault(axis.path, index)
        if axis.path == "seed":
            problems.append((where, "seed is not an axis: list the seeds in `seeds`"))
        elif (reason := _path_problem(axis.path)) is not None:
            problems.append((where, reason))
    if problems:
        raise InvalidSweep(problems)
    if sweep.mode == "random" and sweep.samples is not None and sweep.samples > sweep.combinations():
        raise InvalidSweep(
            [(("samples",), f"samples ({sweep.samples}) is more than the grid's {sweep.combinations()} combinations")]
        )
    runs = sweep.run_count()
    if runs > max_runs:
        field = ("samples",) if sweep.mode == "random" else ("axes",)
        raise InvalidSweep(
            [
                (
                    field,
                    f"this sweep would make {runs} runs; at most {max_runs} are allowed per sweep "
                    "(PRUNELAB_MAX_SWEEP_RUNS): use fewer values or seeds, or mode random with fewer samples",
                )
            ]
        )


def expand(sweep: SweepSpec, max_runs: int) -> list[SweepPoint]:
    """Every point of the sweep with its validated spec, or InvalidSweep naming the bad points (all or nothing)."""
    check_sweep(sweep, max_runs)
    variants: list[tuple[str | None, dict[str, Any]]] = list(sweep.variants.items()) or [(None, {})]
    sizes = [len(variants), *(len(axis.values) for axis in sweep.axes)]
    points: list[SweepPoint] = []
    problems: list[tuple[tuple[str, ...], str]] = []
    for combination in _combinations(sweep, sizes):
        variant_name, variant = variants[combination[0]]
        values = {axis.path: axis.values[choice] for axis, choice in zip(sweep.axes, combination[1:], strict=True)}
        for seed in sweep.seeds:
            index = len(points) + len(problems)
            as_json: dict[str, Any] = {}  # stays empty when the point's spec cannot even be built
            try:
                as_json = point_spec(sweep.base, variant, values, seed)
                spec = RunSpec.model_validate(as_json)
            except (ValidationError, InvalidSpec, ValueError) as error:
                path, message = point_problem(index, point_label(variant_name, values, seed), error)
                problems.append((path, message + _engine_pairs_hint(as_json, values)))
                continue
            points.append(SweepPoint(index=index, variant=variant_name, values=values, seed=seed, spec=spec))
    if problems:
        raise InvalidSweep(problems[:MAX_REPORTED_POINTS])
    return points


ENGINE_VARIANTS = (
    '"variants": {"tfmot": {"engine": "tfmot"}, "keras-tf": {"engine": "keras", "backend": "tensorflow"}, '
    '"keras-jax": {"engine": "keras", "backend": "jax"}}'
)


def _engine_pairs_hint(spec: dict[str, Any], values: dict[str, Any]) -> str:
    """For a tfmot point given a backend by an axis: engine and backend are pairs, which variants spell, not axes."""
    if "engine" not in values and "backend" not in values:
        return ""
    if spec.get("engine", "tfmot") != "tfmot" or spec.get("backend") in (None, "tensorflow"):
        return ""
    return (
        ". The tfmot engine runs on tensorflow only, so engine and backend do not cross as axes: give each "
        f"engine and backend pair as a variant instead (and drop the engine and backend axes), e.g. {ENGINE_VARIANTS}"
    )


def _combinations(sweep: SweepSpec, sizes: list[int]) -> list[tuple[int, ...]]:
    if sweep.mode == "grid":
        return list(itertools.product(*(range(size) for size in sizes)))
    total = math.prod(sizes)
    if total > MAX_GRID:
        raise InvalidSweep([(("axes",), f"the grid has {total} combinations; random sampling handles at most 2**62")])
    drawn = np.random.default_rng(sweep.sample_seed).choice(total, size=sweep.samples, replace=False)
    return [tuple(int(i) for i in np.unravel_index(int(flat), sizes)) for flat in np.sort(drawn)]


def point_spec(base: dict[str, Any], variant: dict[str, Any], values: dict[str, Any], seed: int) -> dict[str, Any]:
    """The run spec (as JSON) of one point: base, then the variant, then each axis value, then the seed."""
    spec = merge(base, variant)
    for path, value in values.items():
        if path == SPARSITY_AXIS:
            set_sparsity(spec, value)
        else:
            set_path(spec, path.split("."), value)
    spec["seed"] = seed
    return spec


def merge(into: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A deep merge of `over` into a copy of `into`; objects of another `kind` replace rather than merge."""
    merged = dict(into)
    for key, value in over.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and not _other_kind(current, value):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def _other_kind(current: dict[str, Any], value: dict[str, Any]) -> bool:
    return "kind" in current and "kind" in value and current["kind"] != value["kind"]


def set_path(spec: dict[str, Any], parts: list[str], value: Any) -> None:
    node = spec
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def set_sparsity(spec: dict[str, Any], value: Any) -> None:
    """Set the schedule's final sparsity, whichever field holds it for the schedule's kind."""
    schedule = spec.setdefault("schedule", {})
    if not isinstance(schedule, dict):
        raise ValueError("schedule must be an object for the sparsity axis")
    kind = schedule.setdefault("kind", DEFAULT_SCHEDULE_KIND)
    if not isinstance(kind, str):
        raise ValueError(f"schedule.kind must be one of {', '.join(SCHEDULE_KINDS)}")
    if kind in SPARSITY_FIELDS:
        schedule[SPARSITY_FIELDS[kind]] = value
        return
    if kind != "piecewise":
        raise ValueError(f"the sparsity axis does not apply to schedule kind {kind!r}")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"sparsity {value!r} must be a number")
    points = schedule.get("points", [[0, 0.0], [1.0, 0.5]])
    if not (isinstance(points, list) and points and all(_is_pair(point) for point in points)):
        raise ValueError("schedule.points must be a list of [step, sparsity] pairs of numbers")
    last = float(points[-1][1])
    if last <= 0:
        raise ValueError(
            "the sparsity axis scales a piecewise schedule's points: its last point's sparsity must be > 0"
        )
    schedule["points"] = [[step, float(sparsity) * value / last] for step, sparsity in points]


def point_problem(index: int, label: str, error: Exception) -> tuple[tuple[str, ...], str]:
    """Where and why a point is not a valid run: `points.<index>`, the point's values and the spec's own message."""
    return ("points", str(index)), f"point {index} ({label}): {_reason(error)}"


def _is_pair(point: Any) -> bool:
    return (
        isinstance(point, list | tuple)
        and len(point) == 2
        and all(isinstance(part, int | float) and not isinstance(part, bool) for part in point)
    )


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        parts = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"] if str(part) not in UNION_TAGS)
            parts.append(f"{where}: {str(item['msg']).removeprefix('Value error, ')}")
        return "; ".join(parts)
    if isinstance(error, InvalidSpec):
        return f"{'.'.join(error.field)}: {error.message}"
    return str(error)


def _path_problem(path: str) -> str | None:
    """Why `path` is not a field of a run spec (None: it is), naming the first part that is not."""
    if path == SPARSITY_AXIS:
        return None
    models: list[type[BaseModel]] = [RunSpec]
    parts = path.split(".")
    for depth, part in enumerate(parts):
        fields = {name: info for model in models for name, info in model.model_fields.items()}
        if part not in fields:
            known = ", ".join(sorted(fields))
            prefix = ".".join(parts[:depth])
            where = f"under {prefix!r}" if prefix else "in a run spec"
            return f"axis path {path!r} is not a spec field: {part!r} is not a field {where} (fields: {known})"
        nested = [model for name, info in fields.items() if name == part for model in _models_in(info.annotation)]
        if depth < len(parts) - 1 and not nested:
            if _is_mapping(fields[part].annotation):
                return None  # a map's keys are the user's (layer_targets.<layer>)
            return f"axis path {path!r} is not a spec field: {'.'.join(parts[: depth + 1])!r} has no fields"
        models = nested
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
    return []


def _is_mapping(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(_is_mapping(arg) for arg in typing.get_args(annotation))
    return typing.get_origin(annotation) is dict
