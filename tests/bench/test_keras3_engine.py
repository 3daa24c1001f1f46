"""The keras3_engine section's judgements, on outputs written here: where two engines part, and the accuracy cells.

The section itself runs at its tiny size in tests/bench/test_bench_smoke.py (every side process, both backends).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import keras3_engine
from bench.keras3_engine import (
    SIZES,
    accuracy_tables,
    compare_sides,
    identity_notes,
    identity_table,
    recipe,
    speed_table,
)
from bench.keras3_side import digest
from bench.report import Result

NAMES = ["dense/kernel", "dense/bias"]


def write_side(folder: Path, steps: list[list[np.ndarray]], accuracy: float) -> None:
    """A side's outputs as bench.keras3_side writes them: per-step digests, epoch-end and final weights."""
    folder.mkdir(parents=True)
    digests = np.array([[np.frombuffer(digest(value), dtype=np.uint8) for value in step] for step in steps])
    np.savez(folder / "digests.npz", names=np.array(NAMES), digests=digests)
    np.savez(folder / "epoch_weights.npz", **{f"0/{name}": value for name, value in zip(NAMES, steps[-1], strict=True)})
    np.savez(folder / "final_weights.npz", **{f"dense/{i}": value for i, value in enumerate(steps[-1])})
    (folder / "result.json").write_text(json.dumps({"test_accuracy": accuracy}))


def trajectory(seed: int, steps: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)] for _ in range(steps)]


def test_identical_sides_are_reported_bit_identical(tmp_path: Path) -> None:
    steps = trajectory(0, 5)
    write_side(tmp_path / "tfmot", steps, 0.9)
    write_side(tmp_path / "keras", [list(step) for step in steps], 0.9)
    facts = compare_sides(tmp_path / "tfmot", tmp_path / "keras", recipe(SIZES["tiny"], "constant", 0))
    assert facts["bit_identical"] and facts["identical_tensors"] == 2 and facts["steps"] == 5
    assert "first_step" not in facts


def test_the_first_differing_step_tensor_and_size_are_found(tmp_path: Path) -> None:
    theirs = trajectory(0, 5)
    ours = [[value.copy() for value in step] for step in theirs]
    for step in ours[2:]:  # from step 3 on, one bias value is one ulp off; -0.0 against +0.0 counts too
        step[1][0] = np.nextafter(step[1][0], np.float32(np.inf))
    ours[4][0][0, 0] = -0.0
    theirs[4][0][0, 0] = 0.0
    write_side(tmp_path / "tfmot", theirs, 0.9)
    write_side(tmp_path / "keras", ours, 0.8)
    facts = compare_sides(tmp_path / "tfmot", tmp_path / "keras", recipe(SIZES["tiny"], "constant", 0))
    assert not facts["bit_identical"] and facts["identical_tensors"] == 0
    assert facts["first_step"] == 3 and facts["first_tensor"] == "dense/bias"
    assert facts["tensors_differing_then"] == ["dense/bias"]
    assert facts["first_epoch"] == 1 and facts["elements_differing_then"] == 2
    assert 0 < facts["max_abs_difference_final"] < 1e-5


def row(engine: str, schedule: str, seed: int, accuracy: float, zipped: int, kernels: dict[str, float]) -> dict:
    return {"engine": engine, "schedule": schedule, "seed": seed, "test_accuracy": accuracy, "h5_zip_bytes": zipped,
            "measured_sparsity": 0.875, "kernel_sparsity": kernels}  # fmt: skip


def test_accuracy_cells_state_n_and_judge_gaps_sparsity_and_size() -> None:
    exact = {"conv1/0": 0.875, "dense/0": 0.875}
    rows = [
        row("tfmot", "constant", 0, 0.9900, 100_000, exact),
        row("tfmot", "constant", 1, 0.9910, 100_000, exact),
        row("keras3/tensorflow", "constant", 0, 0.9915, 100_500, exact),  # +0.10 pt, +0.5%
        row("keras3/jax", "constant", 0, 0.9880, 102_000, {"conv1/0": 0.875, "dense/0": 0.8749}),  # -0.25 pt, +2%
    ]
    figures: dict[str, float | str] = {}
    summary, each = accuracy_tables(rows, SIZES["tiny"], figures)
    cells = {line[1]: line for line in summary.rows}
    assert [line[2] for line in summary.rows] == [2, 1, 1]  # n per cell, tfmot first
    assert cells["keras3/tensorflow"][6] == "yes" and cells["keras3/jax"][6] == "no"
    assert cells["keras3/tensorflow"][9] == "yes (2 kernels)" and cells["keras3/jax"][9].startswith("no")
    assert cells["keras3/tensorflow"][12] == "yes" and cells["keras3/jax"][12] == "no"
    assert round(float(figures["accuracy_gap_pt_keras3_tensorflow_constant"]), 6) == 0.1
    assert round(float(figures["zip_gap_pct_keras3_jax_constant"]), 6) == 2.0
    assert figures["n_keras3_jax_constant"] == 1.0 and len(each.rows) == 4


def test_a_stored_only_read_carries_identity_and_speed_from_the_section_stored_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The long identity and speed runs outlive their work folder: a later stored-only read of new accuracy runs
    keeps them, saying where they came from, and never turns them into this read's own."""
    size = SIZES["tiny"]
    steps = trajectory(0, 5)
    write_side(tmp_path / "before" / "tfmot", steps, 0.9)
    write_side(tmp_path / "before" / "keras", [list(step) for step in steps], 0.9)
    facts = compare_sides(tmp_path / "before" / "tfmot", tmp_path / "before" / "keras", recipe(size, "polynomial", 0))
    figures: dict[str, float | str] = {}
    arms = [{"arm": label, "step_s": [0.010, 0.010]} for label, *_ in keras3_engine.SPEED_ARMS]
    arms[1]["step_s"] = [0.0105, 0.0105]  # keras3/tensorflow pruning: 1.05x its plain fit
    stored_speed = speed_table(arms, size, figures)
    speed_note = "Speed: measured then (load 0.50 0.40 0.30)."
    before = Result(keras3_engine.NAME, "13.", size.label, [identity_table([facts], size), stored_speed], figures,
                    [*identity_notes([facts]), speed_note])  # fmt: skip
    provenance = {"commit": "abc1234", "finished": "2026-12-07 23:20 UTC"}
    monkeypatch.setattr(keras3_engine, "previous_section", lambda _size: (before, provenance))
    monkeypatch.setenv(keras3_engine.STORED_ONLY_ENV, "1")
    monkeypatch.setenv(keras3_engine.WORK_ENV, str(tmp_path / "empty work"))

    result = keras3_engine.run(size)

    identity = result.tables[0]
    assert identity.rows[0][:5] == ["polynomial", 5, 15, "yes", "2 / 2"]
    assert identity.rows[0][-1] == "section stored at abc1234, 2026-12-07 23:20 UTC"
    assert result.figures["identical_polynomial"] == "yes" and result.figures["identical_tensors_polynomial"] == 2.0
    assert result.tables[1] == stored_speed
    assert result.figures["step_ratio_keras3_tensorflow"] == figures["step_ratio_keras3_tensorflow"]
    assert round(float(result.figures["step_ratio_keras3_tensorflow"]), 6) == 1.05
    assert f"{speed_note} (Carried: section stored at abc1234, 2026-12-07 23:20 UTC.)" in result.notes
    assert any(note.startswith("Identity (polynomial): after 5 steps") and "(Carried: section stored at abc1234"
               in note for note in result.notes)  # fmt: skip
    assert result.figures["accuracy_runs"] == 0.0  # nothing was carried into the accuracy runs
    assert not any("speed part" in note for note in result.notes)  # a read's own load is not the speed runs'

    # Read again, with the read above stored: still carried from where it was measured, not from the re-read.
    monkeypatch.setattr(keras3_engine, "previous_section", lambda _size: (result, {"commit": "def5678"}))
    again = keras3_engine.run(size)
    assert again.tables[0].rows[0][-1] == "section stored at abc1234, 2026-12-07 23:20 UTC"
    assert sum("Carried" in note for note in again.notes if note.startswith("Identity")) == 1
    assert sum(note.count("(Carried:") for note in again.notes if note.startswith("Identity")) == 1
    assert f"{speed_note} (Carried: section stored at abc1234, 2026-12-07 23:20 UTC.)" in again.notes
