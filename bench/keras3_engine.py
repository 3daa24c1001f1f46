"""Faithful and fast: PruneLab's Keras 3 engine (`prunelab.prune`) against tfmot, in the seed tutorial's recipe.

Three parts, each training run a process of its own (`bench.keras3_side`, started by `harness.sides`):
1. Identity: the seed's CNN on MNIST, the seed recipe, TensorFlow backend, from the same initial weights and batch
   order as tfmot on tf-keras: are the final weights bit-identical? If not, the first step whose weights differ
   (a digest of every tensor after every step), which tensor, and by how much at the first epoch end that differs.
2. Speed: seconds per training step, pruning run against plain `model.fit` of the same model on the same backend
   (TensorFlow, JAX) and against tfmot on tf-keras, arms interleaved, medians over epochs and trials.
3. Accuracy: the seed recipe (87.5%, ConstantSparsity and PolynomialDecay) over seeds per engine and backend:
   test accuracy, each pruned kernel's measured sparsity, zipped .h5, against tfmot's runs and the seed's figures.

Every run's outputs go to a work folder (`PRUNELAB_BENCH_KERAS3_WORK`, else a temporary one); a run whose
result is already there is not run again, so the long full-size runs can be started early in the background
(`python -m bench.keras3_engine accuracy|identity --size full`) and the section read them later.
With `PRUNELAB_BENCH_KERAS3_STORED_ONLY=1` the section starts no run at all: it reports the identity, speed and
accuracy runs the work folder holds (n per cell) and says which are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import published_results, sections, workloads
from bench.report import Result, Table, median, ratio
from harness.sides import LEGACY_KERAS, finish_side, keras3, load_arrays, start_side
from harness.stack import shared_data_dir
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import ConstantSchedule, RunSpec

NAME = "keras3_engine"
SPARSITY = 0.875
GOAL_STEP_RATIO = 1.05
ACCURACY_TOLERANCE = 0.0015  # 0.15 pt
ZIP_TOLERANCE = 0.01
# The seed tutorial's single runs, as bench/published_results states them.
PUBLISHED = {schedule: published_results.PUBLISHED[f"{schedule}-87.5"] for schedule in ("constant", "polynomial")}
SIDE = "bench.keras3_side"
WORK_ENV, STORED_ONLY_ENV = "PRUNELAB_BENCH_KERAS3_WORK", "PRUNELAB_BENCH_KERAS3_STORED_ONLY"
# (label, engine, environment): the speed arms, in the order each round runs them.
SPEED_ARMS = (
    ("keras3/tensorflow plain fit", "keras", "tensorflow", False),
    ("keras3/tensorflow pruning", "keras", "tensorflow", True),
    ("keras3/jax plain fit", "keras", "jax", False),
    ("keras3/jax pruning", "keras", "jax", True),
    ("tf-keras plain fit", "tfmot", None, False),
    ("tfmot on tf-keras pruning", "tfmot", None, True),
)
TFMOT_ARM = "tfmot on tf-keras pruning"


@dataclass(frozen=True)
class Size:
    label: str
    dataset: str
    model: str
    epochs: int
    batch_size: int
    validation_split: float
    seeds: int  # per schedule, engine and backend
    schedules: tuple[str, ...]  # of the accuracy part
    backends: tuple[str, ...]
    tfmot_seeds: int  # 0: tfmot's runs are the seed_question section's stored ones (same recipe, the worker)
    identity_schedules: tuple[str, ...]
    speed_epochs: int  # per trial; the first is dropped (tracing, compilation)
    speed_trials: int
    timeout_s: float


SIZES = {
    # tiny: the smoke test's, every part once at its smallest (12 processes).
    "tiny": Size(
        "digits, mlp, 1 epoch, batch 32, 1 seed",
        "digits",
        "mlp",
        1,
        32,
        0.1,
        1,
        ("constant",),
        ("tensorflow", "jax"),
        1,
        ("polynomial",),
        3,
        1,
        600,
    ),
    "quick": Size(
        "MNIST, tutorial_mnist_cnn, 2 epochs, 1 seed (QUICK: the seed trains 30)",
        "mnist",
        "tutorial_mnist_cnn",
        2,
        250,
        0.2,
        1,
        ("constant", "polynomial"),
        ("tensorflow", "jax"),
        1,
        ("polynomial",),
        3,
        1,
        3600,
    ),
    "full": Size(
        "MNIST, tutorial_mnist_cnn (the seed's CNN), 30 epochs, batch 250 (the seed's recipe), 3 seeds",
        "mnist",
        "tutorial_mnist_cnn",
        30,
        250,
        0.2,
        3,
        ("constant", "polynomial"),
        ("tensorflow", "jax"),
        0,
        ("polynomial", "constant"),
        3,
        1,
        6 * 3600,
    ),
}


def recipe(size: Size, schedule: str, seed: int, epochs: int | None = None) -> RunSpec:
    """The seed's recipe at this size: 87.5% from 20% of training to the end every 100 steps, Adam 0.001."""
    total, base = workloads.tutorial_training(
        size.dataset, size.model, epochs or size.epochs, size.batch_size, size.validation_split
    )
    chosen = workloads.constant(total, SPARSITY) if schedule == "constant" else workloads.polynomial(total, SPARSITY)
    return RunSpec.model_validate({**base, "seed": seed, "name": f"{schedule}-{seed}", "schedule": chosen})


def side_env(engine: str, backend: str | None) -> dict[str, str]:
    return LEGACY_KERAS if engine == "tfmot" else keras3(backend or "tensorflow")


@contextmanager
def work_folder() -> Iterator[Path]:
    """Where runs leave their outputs: PRUNELAB_BENCH_KERAS3_WORK (kept, reused), else a temporary folder."""
    configured = os.environ.get(WORK_ENV)
    if configured:
        Path(configured).mkdir(parents=True, exist_ok=True)
        yield Path(configured)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-keras3-") as scratch:
            yield Path(scratch)


def start_run(folder: Path, engine: str, backend: str | None, spec: RunSpec, **options: Any) -> Any:
    """Start one training in its own process, writing to `folder`; finish it with `finish_run`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "engine": engine,
        "spec": spec.model_dump(mode="json"),
        "out": str(folder),
        "data_dir": str(shared_data_dir()),
        **options,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    (folder / "result.json").unlink(missing_ok=True)
    return start_side(SIDE, [str(folder / "config.json")], side_env(engine, backend))


def finish_run(process: Any, folder: Path, timeout: float) -> dict[str, Any]:
    output = finish_side(process, timeout)
    (folder / "output.log").write_text(output)
    return json.loads((folder / "result.json").read_text())


def stored(folder: Path) -> dict[str, Any] | None:
    path = folder / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_many(
    jobs: Sequence[tuple[Path, str, str | None, RunSpec, dict[str, Any]]],
    size: Size,
    parallel: int = 1,
    reuse: bool = True,
) -> list[dict[str, Any]]:
    """Run jobs (folder, engine, backend, spec, options), `parallel` at a time, reusing stored results."""
    results: dict[int, dict[str, Any]] = {}
    pending = []
    for index, job in enumerate(jobs):
        kept = stored(job[0]) if reuse else None
        if kept is not None:
            results[index] = kept
        else:
            pending.append(index)
    running: list[tuple[int, Any]] = []
    while pending or running:
        while pending and len(running) < parallel:
            index = pending.pop(0)
            folder, engine, backend, spec, options = jobs[index]
            running.append((index, start_run(folder, engine, backend, spec, **options)))
        index, process = running.pop(0)
        results[index] = finish_run(process, jobs[index][0], size.timeout_s)
    return [results[index] for index in range(len(jobs))]


# ---- 3. accuracy ----


def accuracy_jobs(size: Size, work: Path) -> list[tuple[Path, str, str | None, RunSpec, dict[str, Any]]]:
    """Keras engine seed by seed, each backend and schedule at a seed (a run cut short leaves every cell's n
    within one of the others'); then tfmot's own, if any."""
    jobs: list[tuple[Path, str, str | None, RunSpec, dict[str, Any]]] = []
    for seed in range(size.seeds):
        for backend in size.backends:
            for schedule in size.schedules:
                folder = work / "accuracy" / f"keras-{backend}-{schedule}-{seed}"
                jobs.append((folder, "keras", backend, recipe(size, schedule, seed), {}))
    for seed in range(size.tfmot_seeds):
        for schedule in size.schedules:
            jobs.append(
                (work / "accuracy" / f"tfmot-{schedule}-{seed}", "tfmot", None, recipe(size, schedule, seed), {})
            )
    return jobs


def accuracy_runs(size: Size, work: Path, stored_only: bool) -> list[dict[str, Any]]:
    """Each accuracy run's row (engine, backend, schedule, seed and what it measured), run unless stored."""
    jobs = accuracy_jobs(size, work)
    results = [stored(job[0]) for job in jobs] if stored_only else run_many(jobs, size)
    rows = []
    for (folder, engine, backend, spec, _), result in zip(jobs, results, strict=True):
        if result is None:
            continue
        schedule = folder.name.split("-")[-2]
        rows.append(
            {
                "engine": engine if engine == "tfmot" else f"keras3/{backend}",
                "schedule": schedule,
                "seed": spec.seed,
                **result,
            }
        )
    if size.tfmot_seeds == 0:
        rows += tfmot_reference()
    return rows


def tfmot_reference() -> list[dict[str, Any]]:
    """tfmot's runs of the same recipe through PruneLab's worker: the seed_question section's stored full result."""
    loaded = sections.load("full", "seed_question")
    if loaded is None:
        return []
    result, provenance = loaded
    table = next(table for table in result.tables if table.title.startswith("Each run"))
    columns = {header: index for index, header in enumerate(table.headers)}
    return [
        {
            "engine": "tfmot",
            "schedule": row[columns["schedule"]],
            "seed": row[columns["seed"]],
            "test_accuracy": row[columns["test accuracy"]],
            "h5_zip_bytes": row[columns["zipped .h5 B"]],
            "measured_sparsity": row[columns["measured sparsity"]],
            "kernel_sparsity": {},
            "source": f"seed_question run {row[columns['run']]} ({provenance.get('commit', '?')})",
        }
        for row in table.rows
    ]


def accuracy_tables(rows: list[dict[str, Any]], size: Size, figures: dict[str, float | str]) -> list[Table]:
    engines = sorted({row["engine"] for row in rows}, key=lambda engine: (engine != "tfmot", engine))
    summary = []
    for schedule in ("constant", "polynomial"):
        reference = [row for row in rows if row["engine"] == "tfmot" and row["schedule"] == schedule]
        tf_accuracy = statistics.fmean(row["test_accuracy"] for row in reference) if reference else None
        tf_zip = statistics.fmean(row["h5_zip_bytes"] for row in reference) if reference else None
        for engine in engines:
            cell = [row for row in rows if row["engine"] == engine and row["schedule"] == schedule]
            if not cell:
                continue
            accuracy = statistics.fmean(row["test_accuracy"] for row in cell)
            zipped = statistics.fmean(row["h5_zip_bytes"] for row in cell)
            kernels = [value for row in cell for value in row["kernel_sparsity"].values()]
            exact = all(value == SPARSITY for value in kernels) if kernels else None
            gap = accuracy - tf_accuracy if tf_accuracy is not None and engine != "tfmot" else None
            zip_gap = (zipped / tf_zip - 1) if tf_zip and engine != "tfmot" else None
            summary.append(
                [
                    schedule,
                    engine,
                    len(cell),
                    accuracy,
                    statistics.stdev([r["test_accuracy"] for r in cell]) if len(cell) > 1 else None,
                    gap * 100 if gap is not None else None,
                    None if gap is None else ("yes" if abs(gap) <= ACCURACY_TOLERANCE else "no"),
                    PUBLISHED[schedule].test_accuracy,
                    statistics.fmean(row["measured_sparsity"] for row in cell),
                    "-"
                    if exact is None
                    else (f"yes ({len(kernels)} kernels)" if exact else f"no: {sorted(set(kernels))}"),
                    zipped,
                    None if zip_gap is None else zip_gap * 100,
                    None if zip_gap is None else ("yes" if abs(zip_gap) <= ZIP_TOLERANCE else "no"),
                    PUBLISHED[schedule].zip_bytes,
                ]
            )
            key = f"{engine.replace('/', '_')}_{schedule}"
            figures[f"accuracy_{key}"] = accuracy
            figures[f"n_{key}"] = float(len(cell))
            if gap is not None:
                figures[f"accuracy_gap_pt_{key}"] = gap * 100
            if zip_gap is not None:
                figures[f"zip_gap_pct_{key}"] = zip_gap * 100
    each = [
        [
            row["schedule"],
            row["engine"],
            row["seed"],
            row["test_accuracy"],
            row["measured_sparsity"],
            ", ".join(f"{name} {value:.4f}" for name, value in row["kernel_sparsity"].items()) or "-",
            row["h5_zip_bytes"],
            row.get("wall_s"),
            row.get("source", "this section"),
        ]
        for row in sorted(rows, key=lambda row: (row["schedule"], row["engine"], row["seed"]))
    ]
    return [
        Table(
            f"Accuracy, {size.label}: mean per engine and backend (n = runs in the cell), against tfmot's mean",
            [
                "schedule",
                "engine",
                "n",
                "test accuracy mean",
                "std",
                "gap to tfmot, pt",
                "within 0.15 pt",
                "seed's single run",
                "measured sparsity",
                "every pruned kernel exactly 87.5%",
                "zipped .h5 B mean",
                "gap to tfmot, %",
                "within 1%",
                "seed's B",
            ],
            summary,
        ),
        Table(
            "Each accuracy run",
            [
                "schedule",
                "engine",
                "seed",
                "test accuracy",
                "measured sparsity",
                "per pruned kernel",
                "zipped .h5 B",
                "wall s",
                "from",
            ],
            each,
        ),
    ]


# ---- 1. identity ----


def identity(size: Size, work: Path, schedule: str, stored_only: bool = False) -> dict[str, Any]:
    """Both engines from the same initial weights and batch order; where their weights first differ, if they do.

    `stored_only`: compare what the work folder holds, or say that the runs have not finished.
    """
    spec = recipe(size, schedule, 0)
    folder = work / "identity" / schedule
    if stored_only and (stored(folder / "tfmot") is None or stored(folder / "keras") is None):
        return {"schedule": schedule, "finished": False, "steps": plan_steps(spec)}
    if stored(folder / "initial") is None:
        finish_run(
            start_run(folder / "initial", "initial_weights", "tensorflow", spec), folder / "initial", size.timeout_s
        )
    options = {
        "prune": True,
        "initial_weights": str(folder / "initial" / "initial_weights.npz"),
        "digests": True,
        "save_weights": True,
    }
    run_many(
        [(folder / "tfmot", "tfmot", None, spec, options), (folder / "keras", "keras", "tensorflow", spec, options)],
        size,
        parallel=2,
    )
    return compare_sides(folder / "tfmot", folder / "keras", spec)


def plan_steps(spec: RunSpec) -> int:
    return resolve_plan(spec).total_steps


def bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint32)


def compare_sides(tfmot: Path, keras: Path, spec: RunSpec) -> dict[str, Any]:
    ours, theirs = load_arrays(keras / "final_weights.npz"), load_arrays(tfmot / "final_weights.npz")
    digests_ours, digests_theirs = load_arrays(keras / "digests.npz"), load_arrays(tfmot / "digests.npz")
    names = [str(name) for name in digests_theirs["names"]]
    assert names == [str(name) for name in digests_ours["names"]], (names, digests_ours["names"])
    steps = len(digests_theirs["digests"])
    facts: dict[str, Any] = {
        "schedule": spec.schedule.kind,
        "finished": True,
        "steps": steps,
        "steps_engine": len(digests_ours["digests"]),
        "tensors": len(theirs),
        "parameters": int(sum(value.size for value in theirs.values())),
        "identical_tensors": sum(np.array_equal(bits(ours[key]), bits(theirs[key])) for key in theirs),
        "accuracy_tfmot": stored(tfmot)["test_accuracy"],
        "accuracy_keras": stored(keras)["test_accuracy"],  # type: ignore[index]
    }
    facts["bit_identical"] = facts["identical_tensors"] == len(theirs) and set(ours) == set(theirs)
    differs = np.any(
        digests_ours["digests"][:steps] != digests_theirs["digests"][: len(digests_ours["digests"])], axis=2
    )
    if differs.any():
        step_index, tensor_index = np.argwhere(differs)[0]
        facts["first_step"] = int(step_index) + 1  # tfmot's count: the first batch is step 1
        facts["first_tensor"] = names[tensor_index]
        facts["tensors_differing_then"] = [names[i] for i in np.flatnonzero(differs[step_index])]
        epochs_ours, epochs_theirs = load_arrays(keras / "epoch_weights.npz"), load_arrays(tfmot / "epoch_weights.npz")
        for epoch in range(spec.epochs):
            keys = [f"{epoch}/{name}" for name in names]
            changed = [key for key in keys if not np.array_equal(bits(epochs_ours[key]), bits(epochs_theirs[key]))]
            if changed:
                gaps = {key: float(np.max(np.abs(epochs_ours[key] - epochs_theirs[key]))) for key in changed}
                facts["first_epoch"] = epoch + 1
                facts["max_abs_difference_then"] = max(gaps.values())
                facts["elements_differing_then"] = int(
                    sum(np.sum(bits(epochs_ours[k]) != bits(epochs_theirs[k])) for k in changed)
                )
                break
        facts["max_abs_difference_final"] = max(float(np.max(np.abs(ours[key] - theirs[key]))) for key in theirs)
    return facts


def identity_table(found: list[dict[str, Any]], size: Size) -> Table:
    rows: list[list[Any]] = []
    for facts in found:
        if not facts["finished"]:
            rows.append([facts["schedule"], facts["steps"], *["not finished (still running)"] + [None] * 7, None])
            continue
        rows.append(
            [
                facts["schedule"],
                facts["steps"],
                facts["parameters"],
                "yes" if facts["bit_identical"] else "no",
                f"{facts['identical_tensors']} / {facts['tensors']}",
                facts.get("first_step", "-"),
                facts.get("first_tensor", "-"),
                facts.get("max_abs_difference_final", 0.0),
                facts["accuracy_tfmot"],
                facts["accuracy_keras"],
                facts.get("from", "this section"),
            ]
        )
    return Table(
        f"Identity, {size.label}, seed 0, TensorFlow backend: final weights against tfmot 0.8.1 on tf-keras",
        [
            "schedule",
            "steps",
            "parameters",
            "bit-identical",
            "tensors identical",
            "first step differing",
            "first tensor differing",
            "largest |difference| at the end",
            "test accuracy tfmot",
            "test accuracy engine",
            "from",
        ],
        rows,
    )


# ---- what a stored-only read carries from the section stored before ----


def previous_section(size: Size) -> tuple[Result, dict[str, str]] | None:
    """This size's section as stored before (its identity and speed outlive the work folder they came from)."""
    name = next(key for key, value in SIZES.items() if value == size)
    return sections.load(name, NAME)


def previous_label(previous: tuple[Result, dict[str, str]]) -> str:
    provenance = previous[1]
    return f"section stored at {provenance.get('commit', '?')}, {provenance.get('finished', '?')}"


def carry_identity(facts: dict[str, Any], previous: tuple[Result, dict[str, str]]) -> dict[str, Any]:
    """An identity the work folder does not hold, as the stored section reported it (if it had finished there)."""
    if facts["finished"]:
        return facts
    table = next(table for table in previous[0].tables if table.title.startswith("Identity"))
    columns = {header: index for index, header in enumerate(table.headers)}
    row = next((row for row in table.rows if row[0] == facts["schedule"]), None)
    if row is None or row[columns["bit-identical"]] not in ("yes", "no"):
        return facts
    label = row[columns["from"]] if "from" in columns and row[columns["from"]] != "this section" else None
    identical, tensors = (int(part) for part in row[columns["tensors identical"]].split(" / "))
    carried = {
        "schedule": facts["schedule"],
        "finished": True,
        "steps": row[columns["steps"]],
        "parameters": row[columns["parameters"]],
        "tensors": tensors,
        "identical_tensors": identical,
        "bit_identical": row[columns["bit-identical"]] == "yes",
        "accuracy_tfmot": row[columns["test accuracy tfmot"]],
        "accuracy_keras": row[columns["test accuracy engine"]],
        "max_abs_difference_final": row[columns["largest |difference| at the end"]],
        "from": label or previous_label(previous),
        "carried_note": next(
            note for note in previous[0].notes if note.startswith(f"Identity ({facts['schedule']})")
        ).removesuffix(f" (Carried: {label}.)"),
    }
    for key, column in (("first_step", "first step differing"), ("first_tensor", "first tensor differing")):
        if row[columns[column]] != "-":
            carried[key] = row[columns[column]]
    return carried


def carry_speed(previous: tuple[Result, dict[str, str]], figures: dict[str, float | str]) -> Table:
    """The speed table and ratios as the stored section measured them (no arm in the work folder)."""
    result, _ = previous
    figures.update(
        {key: value for key, value in result.figures.items() if key.startswith(("step_ratio_", "to_tfmot_"))}
    )
    return next(table for table in result.tables if table.title.startswith("Speed"))


# ---- 2. speed ----


def speed(size: Size, work: Path, stored_only: bool = False) -> list[dict[str, Any]]:
    """Each arm a fresh process per trial, arms interleaved per round; seconds per step per epoch after the first.

    `stored_only`: the arms the work folder holds, none run (an arm not there is reported as not measured).
    """
    _, base = workloads.tutorial_training(
        size.dataset, size.model, size.speed_epochs, size.batch_size, size.validation_split
    )
    schedule = ConstantSchedule(target_sparsity=SPARSITY, begin_step=0, end_step=-1, frequency=100)
    spec = RunSpec.model_validate({**base, "name": "speed", "schedule": schedule})
    options = {"validation": False, "evaluate": False}
    timings: dict[str, list[float]] = {label: [] for label, *_ in SPEED_ARMS}
    loads: dict[str, list[str]] = {label: [] for label, *_ in SPEED_ARMS}
    for trial in range(size.speed_trials):
        for label, engine, backend, prune in SPEED_ARMS:
            folder = work / "speed" / f"{trial}-{label.replace('/', '_').replace(' ', '_')}"
            job = (folder, engine, backend, spec, {**options, "prune": prune})
            result = stored(folder) if stored_only else run_many([job], size, reuse=False)[0]
            if result is not None:
                timings[label] += [seconds / result["steps_per_epoch"] for seconds in result["epoch_seconds"][1:]]
                loads[label] += result.get("load_average", [])
    return [{"arm": label, "step_s": timings[label], "loads": loads[label]} for label, *_ in SPEED_ARMS]


def speed_table(arms: list[dict[str, Any]], size: Size, figures: dict[str, float | str]) -> Table:
    medians = {arm["arm"]: median(arm["step_s"]) for arm in arms if arm["step_s"]}
    plain = {
        "keras3/tensorflow": "keras3/tensorflow plain fit",
        "keras3/jax": "keras3/jax plain fit",
        "tf-keras": "tf-keras plain fit",
        "tfmot": "tf-keras plain fit",
    }
    rows: list[list[Any]] = []
    for arm in arms:
        label = arm["arm"]
        if label not in medians:
            rows.append([label, 0, "not measured", None, None, None, None])
            continue
        own = next(plain[key] for key in plain if label.startswith(key))
        step_ratio = ratio(medians[label], medians.get(own)) if label != own else None
        to_tfmot = ratio(medians[label], medians.get(TFMOT_ARM)) if label.endswith("pruning") else None
        rows.append(
            [
                label,
                len(arm["step_s"]),
                medians[label] * 1000,
                min(arm["step_s"]) * 1000,
                max(arm["step_s"]) * 1000,
                step_ratio,
                to_tfmot,
            ]
        )
        key = label.split(" ")[0].replace("/", "_")
        if step_ratio is not None and label.endswith("pruning"):
            figures[f"step_ratio_{key}"] = step_ratio
        if to_tfmot is not None and label != TFMOT_ARM:
            figures[f"to_tfmot_{key}"] = to_tfmot
    return Table(
        f"Speed, {size.label.split(',')[0]}, {size.model}, batch {size.batch_size}: ms per training step (median over "
        f"epochs 2-{size.speed_epochs} of {size.speed_trials} trial(s) per arm, each a fresh process, interleaved)",
        [
            "arm",
            "epochs timed",
            "ms/step median",
            "min",
            "max",
            "ratio to plain fit, same Keras and backend",
            "ratio to tfmot's pruning",
        ],
        rows,
    )


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(size: Size) -> Result:
    started = time.monotonic()
    figures: dict[str, float | str] = {}
    stored_only = os.environ.get(STORED_ONLY_ENV) == "1"
    loads: dict[str, str] = {}
    with work_folder() as work:
        loads["identity"] = load_average()
        found = [identity(size, work, schedule, stored_only) for schedule in size.identity_schedules]
        loads["speed"] = load_average()
        arms = speed(size, work, stored_only)
        loads["speed end"] = load_average()
        rows = accuracy_runs(size, work, stored_only)
        loads["accuracy read"] = load_average()
    previous = previous_section(size) if stored_only else None
    if previous is not None:
        found = [carry_identity(facts, previous) for facts in found]
    for facts in found:
        if not facts["finished"]:
            figures[f"identical_{facts['schedule']}"] = "not finished"
            continue
        figures[f"identical_{facts['schedule']}"] = "yes" if facts["bit_identical"] else "no"
        figures[f"identical_tensors_{facts['schedule']}"] = float(facts["identical_tensors"])
        if "first_step" in facts:
            figures[f"first_step_differing_{facts['schedule']}"] = float(facts["first_step"])
    figures["identity_steps"] = float(found[0]["steps"])
    speeds = speed_table(arms, size, figures)
    carried_speed = previous is not None and not any(arm["step_s"] for arm in arms)
    if carried_speed:
        assert previous is not None
        speeds = carry_speed(previous, figures)
    tables = [identity_table(found, size), speeds, *accuracy_tables(rows, size, figures)]
    figures["accuracy_runs"] = float(sum("source" not in row for row in rows))  # those made here
    arm_loads = [load for arm in arms for load in arm.get("loads", [])]
    if not stored_only:
        speed_loads = f"(1, 5, 15 min) at the start of the speed part {loads['speed']}, at its end {loads['speed end']}"
    elif arm_loads:
        one_minute = sorted(float(load.split()[0]) for load in arm_loads)
        speed_loads = (
            f"(1 min) as its arms ran, at each arm's start and end: {one_minute[0]:.2f} to {one_minute[-1]:.2f}"
        )
    else:
        speed_loads = "while its arms ran: not recorded with them (this read's own load is not theirs)"
    speed_note = (
        f"Speed: the seed's CNN at batch {size.batch_size} on the training split ({size.speed_epochs} epochs a "
        "trial, no validation), ConstantSparsity 87.5% from step 0 every 100 steps, so masks are recomputed in the "
        "timed epochs. An epoch's time runs from its first batch to its last callback (the engine's epoch-end "
        f"masking included). Goal: pruning / plain fit <= {GOAL_STEP_RATIO} per backend. Load average "
        f"{speed_loads}."
    )
    if carried_speed and previous is not None:
        stored_note = next(note for note in previous[0].notes if note.startswith("Speed:"))
        measured, _, carried = stored_note.partition(" (Carried: ")  # where it was measured, if carried before
        speed_note = f"{measured} (Carried: {carried.removesuffix('.)') or previous_label(previous)}.)"
    notes = [
        *identity_notes(found),
        speed_note,
        "Accuracy: the Keras 3 runs go through the library directly (one process per run: the worker's dataset "
        "loader and batch order, the zoo's model built for Keras 3, `prunelab.prune.Pruner` with the plan's "
        "schedule, measured sparsity from `core.telemetry`, the stripped model's .h5 zipped by "
        "`core.exports.zipped_size` as the worker measures tfmot's); not through a worker, whose Keras engine path "
        "was being built meanwhile.",
        "tfmot's runs: "
        + (
            "this section's own (same code path, tf-keras)."
            if size.tfmot_seeds
            else "the seed_question section's stored full-size runs (5 seeds per schedule, the same recipe "
            "through PruneLab's worker and tfmot; bench/results/full/seed_question.json); no fresh "
            "tfmot runs were made here."
        ),
        "Zipped sizes compare .h5 files; Keras 3 and tf-keras write slightly different HDF5 metadata around the same "
        "weights, which is part of the gap.",
    ]
    if stored_only:
        notes.append(
            "PARTIAL: this section read the identity, speed and accuracy runs that had finished when it was written "
            "(n per cell above; 'not finished' / 'not measured' where none had); it started none. A part its work "
            "folder did not hold is carried from the section stored before, where that had it, and says so "
            "('from' column, notes)."
        )
    if size.dataset == "mnist" and size.epochs < 30:
        notes.insert(0, f"QUICK MODE: {size.epochs} epoch(s) instead of the seed recipe's 30.")
    return Result(
        NAME,
        "13. Faithful and fast: the Keras 3 engine against tfmot",
        size.label,
        tables,
        figures,
        notes,
        elapsed_s=time.monotonic() - started,
    )


def identity_notes(found: list[dict[str, Any]]) -> list[str]:
    notes = []
    for facts in found:
        if "carried_note" in facts:
            notes.append(f"{facts['carried_note']} (Carried: {facts['from']}.)")
        elif not facts["finished"]:
            notes.append(
                f"Identity ({facts['schedule']}, {facts['steps']} steps): its two runs had not finished when this "
                "section was written (`python -m bench.keras3_engine identity` runs them); no claim yet."
            )
        elif facts["bit_identical"] and "first_step" not in facts:
            notes.append(
                f"Identity ({facts['schedule']}): after {facts['steps']} steps all {facts['tensors']} tensors "
                f"({facts['parameters']:,} values) are bit-identical to tfmot's, and so was every tensor after every "
                "step (a digest of each after each batch matched)."
            )
        else:
            notes.append(
                f"Identity ({facts['schedule']}): the weights first differ after step {facts.get('first_step')} in "
                f"{facts.get('first_tensor')} (then also {', '.join(facts.get('tensors_differing_then', []))}); "
                f"at the end of epoch {facts.get('first_epoch')} the largest |difference| was "
                f"{facts.get('max_abs_difference_then')} over {facts.get('elements_differing_then')} values; at the "
                f"end {facts.get('max_abs_difference_final')}."
            )
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    """Start one part's runs alone (to run the long ones early): `python -m bench.keras3_engine PART --size S`."""
    parser = argparse.ArgumentParser(prog="python -m bench.keras3_engine", description=main.__doc__)
    parser.add_argument("part", choices=("accuracy", "identity", "speed"))
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--backend",
        action="append",
        choices=("tensorflow", "jax"),
        help="accuracy: run only this backend's Keras 3 runs (repeatable; e.g. the faster backend's seeds first)",
    )
    parser.add_argument(
        "--schedule",
        action="append",
        choices=("constant", "polynomial"),
        help="identity: run only this schedule's pair (repeatable)",
    )
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    with work_folder() as work:
        if args.part == "accuracy":
            for job in accuracy_jobs(size, work):
                if args.backend and job[2] not in args.backend:
                    continue
                if stored(job[0]) is None:
                    print(f"[keras3_engine] {job[0].name} started {time.strftime('%H:%M:%S')}", flush=True)
                    result = run_many([job], size)[0]
                    print(f"[keras3_engine] {job[0].name}: {json.dumps(result)}", flush=True)
        elif args.part == "speed":  # its arms stay in the work folder for a stored-only read of the section
            print(f"[keras3_engine] speed (load {load_average()}): {json.dumps(speed(size, work))}", flush=True)
            print(f"[keras3_engine] speed ended (load {load_average()})", flush=True)
        else:
            for schedule in size.identity_schedules:
                if args.schedule and schedule not in args.schedule:
                    continue
                print(f"[keras3_engine] identity {schedule}: {json.dumps(identity(size, work, schedule))}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
