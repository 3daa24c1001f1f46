"""Benchmark 1: training time and peak memory, a plain tfmot script against PruneLab's worker task.

Arms run interleaved (plain, PruneLab on PostgreSQL, PruneLab on SQLite, plain, ...) so
that load from other processes falls on all of them; each trial is a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from bench import workloads
from bench.report import Result, Table, median, ratio
from harness.stack import REDIS_URL, REPO, StackConfig, postgres_database
from prunelab.core.specs import RunSpec
from prunelab.server.migrate import upgrade_to_head

NAME = "training_overhead"
GOAL = 1.03


@dataclass(frozen=True)
class Size:
    label: str
    spec: RunSpec
    repetitions: int
    arms: tuple[str, ...] = ("plain", "prunelab-postgresql", "prunelab-sqlite")


def _spec(dataset: str, model: str, epochs: int, batch_size: int, validation_split: float) -> RunSpec:
    total, base = workloads.tutorial_training(dataset, model, epochs, batch_size, validation_split)
    return RunSpec.model_validate({**base, "name": "overhead", "schedule": workloads.constant(total, 0.875)})


SIZES = {
    "tiny": Size("digits, mlp, 1 epoch", _spec("digits", "mlp", 1, 32, 0.1), 1, ("plain", "prunelab-postgresql")),
    # Quick: the MNIST CNN's layers on 8x8 digits; steps are ~50x shorter than on MNIST, so any
    # per-step cost of logging weighs far more here than on the real model.
    "quick": Size("digits (8x8), mnist_cnn, 10 epochs, batch 32", _spec("digits", "mnist_cnn", 10, 32, 0.1), 2),
    # Full: the seeds' CNN (431,242 parameters) in the seed's setting: MNIST, 30 epochs, batch 250, validation 0.2;
    # three trials per arm, interleaved (plain, PostgreSQL, SQLite, plain, ...), so drift on a shared machine hits all.
    "full": Size(
        "MNIST, tutorial_mnist_cnn (the seeds' CNN), 30 epochs, batch 250",
        _spec("mnist", "tutorial_mnist_cnn", 30, 250, 0.2),
        3,
    ),
}


def trial(arm: str, spec: RunSpec, config: StackConfig) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.trial", "plain" if arm == "plain" else "prunelab", spec.model_dump_json()]
    completed = subprocess.run(command, env=config.env(), cwd=REPO, capture_output=True, text=True, timeout=3600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("TRIAL ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{arm} trial failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("TRIAL "))


def run(size: Size) -> Result:
    started = time.monotonic()
    trials: dict[str, list[dict[str, float]]] = {arm: [] for arm in size.arms}
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-overhead-")))
        configs: dict[str, StackConfig] = {"plain": StackConfig(home=home / "plain", database_url="", broker_url="")}
        if "prunelab-postgresql" in size.arms:
            url = stack.enter_context(postgres_database("prunelab_bench"))
            upgrade_to_head(url)
            configs["prunelab-postgresql"] = StackConfig(home=home / "pg", database_url=url, broker_url=REDIS_URL)
        if "prunelab-sqlite" in size.arms:
            url = f"sqlite:///{home / 'overhead.sqlite'}"
            upgrade_to_head(url)
            configs["prunelab-sqlite"] = StackConfig(home=home / "sqlite", database_url=url, broker_url=REDIS_URL)
        for _ in range(size.repetitions):
            for arm in size.arms:
                trials[arm].append(trial(arm, size.spec, configs[arm]))

    plain = trials["plain"]
    plain_wall = median([t["wall_s"] for t in plain])
    plain_fit = median([t["fit_s"] for t in plain])
    plain_rss = median([t["peak_rss_mib"] for t in plain])
    rows = []
    figures: dict[str, float | str] = {}
    for arm in size.arms:
        wall = median([t["wall_s"] for t in trials[arm]])
        fit = median([t["fit_s"] for t in trials[arm]])
        rss = median([t["peak_rss_mib"] for t in trials[arm]])
        accuracy = median([t["test_accuracy"] for t in trials[arm]])
        points = median([t.get("points", 0) for t in trials[arm]])
        rows.append(
            [
                arm,
                len(trials[arm]),
                wall,
                ratio(wall, plain_wall),
                fit,
                ratio(fit, plain_fit),
                rss,
                ratio(rss, plain_rss),
                accuracy,
                int(points) if points else None,
            ]
        )
        if arm != "plain":
            key = arm.removeprefix("prunelab-")
            figures[f"wall_ratio_{key}"] = ratio(wall, plain_wall) or 0.0
            figures[f"fit_ratio_{key}"] = ratio(fit, plain_fit) or 0.0
            figures[f"rss_ratio_{key}"] = ratio(rss, plain_rss) or 0.0
    steps = int(plain[0]["steps"])
    table = Table(
        f"Training overhead: {size.label}, {steps} steps, ConstantSparsity 87.5% from step "
        f"{size.spec.schedule.begin_step} (medians of {size.repetitions} interleaved trials, each a fresh process)",
        [
            "arm",
            "trials",
            "end-to-end s",
            "ratio to plain",
            "model.fit s",
            "fit ratio",
            "peak RSS MiB",
            "RSS ratio",
            "test accuracy",
            "points logged",
        ],
        rows,
    )
    notes = [
        "`plain`: prune_low_magnitude + UpdatePruningStep + model.fit(verbose=0), strip_pruning, save .h5, "
        "evaluate (the pruning_with_keras tutorial's steps). `prunelab-*`: `worker.executor.execute_run` on a queued "
        "run: claim, train with per-step logging through `DatabaseReporter`, strip, verify and export the spec's "
        "default formats (.keras, .h5, TFLite float and int8, each also for the dense baseline), manifest and mask "
        "snapshots, evaluate, store artifacts. End-to-end therefore includes export work the plain script does not "
        "do; `model.fit` is the like-for-like figure for per-step logging.",
        "End-to-end counts from data loading to the last write (TensorFlow's import excluded from both); `model.fit` "
        "times the training loop alone, where per-step logging would show.",
        f"Goal: ratio <= {GOAL} on the seeds' MNIST CNN (the full size). Same data split, seed, schedule, batch size "
        "and epochs.",
    ]
    chart = go.Figure(
        [
            go.Bar(name="end-to-end", x=list(size.arms), y=[row[3] for row in rows]),
            go.Bar(name="model.fit", x=list(size.arms), y=[row[5] for row in rows]),
            go.Bar(name="peak RSS", x=list(size.arms), y=[row[7] for row in rows]),
        ],
        layout={"title": f"Ratio to the plain tfmot script ({size.label})", "barmode": "group"},
    )
    return Result(
        NAME,
        "1. Training overhead",
        size.label,
        [table],
        figures,
        notes,
        charts={"training_overhead": chart},
        elapsed_s=time.monotonic() - started,
    )
