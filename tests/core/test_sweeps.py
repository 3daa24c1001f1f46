"""Sweep expansion: the grid, the sparsity axis per schedule kind, the cap, invalid points and paths."""

from __future__ import annotations

import pytest

from prunelab.core.sweeps import InvalidSweep, SweepSpec, expand

TUTORIAL = {
    "base": {"dataset": "digits", "model": "mlp", "epochs": 1, "schedule": {"frequency": 41}},
    "variants": {"constant": {"schedule": {"kind": "constant"}}, "polynomial": {"schedule": {"kind": "polynomial"}}},
    "axes": [{"path": "sparsity", "values": [0.5, 0.75, 0.875, 0.95]}],
    "seeds": [0, 1, 2],
}


def sweep(**changes: object) -> SweepSpec:
    return SweepSpec.model_validate({**TUTORIAL, **changes})


def test_constant_vs_polynomial_at_four_sparsities_and_three_seeds_is_24_points() -> None:
    points = expand(sweep(), max_runs=1000)
    assert len(points) == 24 == sweep().run_count()
    assert [point.index for point in points] == list(range(24))
    seen = {(p.variant, p.values["sparsity"], p.seed) for p in points}
    assert seen == {
        (v, s, seed) for v in ("constant", "polynomial") for s in (0.5, 0.75, 0.875, 0.95) for seed in range(3)
    }
    for point in points:
        schedule = point.spec.schedule
        assert schedule.kind == point.variant and schedule.frequency == 41 and point.spec.seed == point.seed
        final = schedule.target_sparsity if schedule.kind == "constant" else schedule.final_sparsity  # type: ignore[union-attr]
        assert final == point.values["sparsity"]
    assert points[0].tags(5) == ["sweep:5", "variant:constant", "sparsity:0.5", "seed:0"]


def test_the_sparsity_axis_scales_a_piecewise_schedule_to_end_at_the_value() -> None:
    piecewise = {"kind": "piecewise", "points": [[0, 0.0], [0.5, 0.4], [1.0, 0.8]], "frequency": 41}
    [point] = expand(sweep(variants={}, base={"epochs": 1, "schedule": piecewise}, axes=[
        {"path": "sparsity", "values": [0.6]}], seeds=[0]), max_runs=10)  # fmt: skip
    assert point.spec.schedule.points == [(0, 0.0), (0.5, pytest.approx(0.3)), (1.0, pytest.approx(0.6))]  # type: ignore[union-attr]
    flat = {**piecewise, "points": [[0, 0.0], [1.0, 0.0]]}
    with pytest.raises(InvalidSweep, match="its last point's sparsity must be > 0"):
        expand(sweep(variants={}, base={"schedule": flat}, seeds=[0]), max_runs=10)


def test_a_base_without_a_schedule_kind_gets_the_default_for_the_sparsity_axis() -> None:
    points = expand(sweep(variants={}, seeds=[0]), max_runs=10)
    assert [(p.spec.schedule.kind, p.spec.schedule.final_sparsity) for p in points] == [  # type: ignore[union-attr]
        ("polynomial", 0.5), ("polynomial", 0.75), ("polynomial", 0.875), ("polynomial", 0.95)
    ]  # fmt: skip


def test_other_axes_set_their_path_and_objects_replace_whole_values() -> None:
    axes = [
        {"path": "schedule.frequency", "values": [10, 41]},
        {"path": "structure", "values": [{"kind": "unstructured"}, {"kind": "block", "block_size": [1, 4]}]},
        {"path": "learning_rate", "values": [0.01]},
    ]
    points = expand(sweep(axes=axes, seeds=[3]), max_runs=100)
    assert len(points) == 2 * 2 * 2 * 1
    block = [p for p in points if p.spec.structure.kind == "block"]
    assert len(block) == 4 and all(p.spec.structure.block_size == (1, 4) for p in block)  # type: ignore[union-attr]
    assert {p.spec.schedule.frequency for p in points} == {10, 41}
    assert all(p.spec.learning_rate == 0.01 and p.spec.seed == 3 for p in points)
    assert points[-1].tags(1) == ["sweep:1", "variant:polynomial", "schedule.frequency:41", "structure:block",
                                  "learning_rate:0.01", "seed:3"]  # fmt: skip


def test_a_sweep_over_the_cap_says_how_many_runs_it_would_make() -> None:
    with pytest.raises(InvalidSweep, match=r"^this sweep would make 24 runs; at most 20 are allowed"):
        expand(sweep(), max_runs=20)


def test_random_mode_draws_distinct_combinations_reproducibly_and_runs_each_seed() -> None:
    axes = [{"path": "learning_rate", "values": [0.001 * i for i in range(1, 101)]},
            {"path": "batch_size", "values": list(range(8, 108))}]  # fmt: skip
    random = sweep(axes=axes, mode="random", samples=7, sample_seed=3)
    points = expand(random, max_runs=1000)
    assert len(points) == 21 == random.run_count()
    combos = [(p.variant, p.values["learning_rate"], p.values["batch_size"]) for p in points[::3]]
    assert len(set(combos)) == 7
    assert [p.seed for p in points[:3]] == [0, 1, 2]
    assert combos == [(p.variant, p.values["learning_rate"], p.values["batch_size"]) for p in expand(random, 1000)[::3]]
    with pytest.raises(InvalidSweep, match="would make 21 runs; at most 20"):
        expand(random, max_runs=20)


def test_invalid_points_are_all_named_and_nothing_is_returned() -> None:
    with pytest.raises(InvalidSweep) as raised:
        expand(sweep(axes=[{"path": "sparsity", "values": [0.5, 1.0]}], seeds=[0]), max_runs=100)
    assert raised.value.problems == [
        (("points", "1"), "point 1 (variant constant, sparsity 1.0, seed 0): schedule.target_sparsity: "
                          "target_sparsity must be in range [0,1)"),
        (("points", "3"), "point 3 (variant polynomial, sparsity 1.0, seed 0): schedule.final_sparsity: "
                          "final_sparsity must be in range [0,1)"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("sparsity_target", "'sparsity_target' is not a field in a run spec"),
        ("schedule.target", "'target' is not a field under 'schedule'"),
        ("epochs.count", "'epochs' has no fields"),
        ("seed", "seed is not an axis: list the seeds in `seeds`"),
    ],
)
def test_an_axis_path_that_is_not_a_spec_field_is_named(path: str, message: str) -> None:
    with pytest.raises(InvalidSweep) as raised:
        expand(sweep(axes=[{"path": path, "values": [1]}]), max_runs=100)
    [(field, text)] = raised.value.problems
    assert field == ("axes", "0") and message in text


def test_nested_and_map_paths_are_spec_fields() -> None:
    axes = [{"path": "scope.keep_last_dense", "values": [True]}, {"path": "layer_targets.dense", "values": [0.3]},
            {"path": "structure.m", "values": [1]}]  # fmt: skip
    base = {**TUTORIAL["base"], "structure": {"kind": "m_by_n", "m": 2, "n": 4}}  # type: ignore[dict-item]
    [point] = expand(sweep(variants={}, base=base, axes=axes, seeds=[0]), max_runs=10)
    assert point.spec.scope.keep_last_dense and point.spec.layer_targets == {"dense": 0.3}
    assert point.spec.structure.m == 1  # type: ignore[union-attr]


def test_the_sweep_itself_is_validated() -> None:
    with pytest.raises(ValueError, match="seeds must be distinct"):
        sweep(seeds=[1, 1])
    with pytest.raises(ValueError, match="mode random needs samples"):
        sweep(mode="random")
    with pytest.raises(ValueError, match="String should match pattern"):
        sweep(variants={"has space": {}})


CONSTANT_BASE = {**TUTORIAL["base"], "schedule": {"kind": "constant", "frequency": 41}}  # type: ignore[dict-item]
ENGINES_AS_VARIANTS = {
    "tfmot": {"engine": "tfmot"},
    "keras-tf": {"engine": "keras", "backend": "tensorflow"},
    "keras-jax": {"engine": "keras", "backend": "jax"},
}


def test_engine_and_backend_axes_name_each_tfmot_point_given_a_backend_and_suggest_variants() -> None:
    axes = [{"path": "engine", "values": ["tfmot", "keras"]}, {"path": "backend", "values": ["tensorflow", "jax"]}]
    with pytest.raises(InvalidSweep) as raised:
        expand(sweep(base=CONSTANT_BASE, variants={}, axes=axes, seeds=[0]), max_runs=100)
    [(field, message)] = raised.value.problems  # only tfmot x jax; no point is dropped silently
    assert field == ("points", "1")
    assert message.startswith(
        "point 1 (engine tfmot, backend jax, seed 0): backend: backend 'jax': the tfmot engine runs on tf-keras"
    )
    assert "give each engine and backend pair as a variant instead" in message
    assert '"keras-jax": {"engine": "keras", "backend": "jax"}' in message


def test_engines_and_backends_as_variants_cross_with_the_other_axes() -> None:
    points = expand(sweep(variants=ENGINES_AS_VARIANTS, seeds=[0]), max_runs=100)
    pairs = [(point.variant, point.spec.engine, point.spec.keras_backend) for point in points]
    assert pairs == [
        (name, engine, backend)
        for name, engine, backend in [("tfmot", "tfmot", "tensorflow"), ("keras-tf", "keras", "tensorflow"),
                                      ("keras-jax", "keras", "jax")]
        for _sparsity in range(4)
    ]  # fmt: skip
    assert "variant:keras-jax" in points[-1].tags(1)


def test_other_invalid_points_get_no_engine_hint() -> None:
    with pytest.raises(InvalidSweep) as raised:
        expand(sweep(axes=[{"path": "sparsity", "values": [1.0]}], seeds=[0]), max_runs=100)
    assert all("variant instead" not in message for _, message in raised.value.problems)
