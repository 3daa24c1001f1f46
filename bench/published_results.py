"""Benchmark 2: PruneLab reproduces the published pruning results, from runs submitted through its API.

Published (tfmot's schedules comparison on MNIST, 87.5% sparsity from 20% of training to
the end, 30 epochs, batch 250, validation split 0.2): ConstantSparsity 98.86% test accuracy,
388,071 B zipped; PolynomialDecay 99.27%, 384,305 B; the dense baseline 1,601,609 B zipped.
A 90%-sparse MNIST model compresses about 6x with zip and about 24x with post-training
quantization (PTQ). We compare ratios to our own dense run, since our `mnist_cnn` uses
'same' padding and no dropout (its dense layer is twice the tutorial's).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import plotly.graph_objects as go

from bench import workloads
from bench.report import Result, Table, ratio
from bench.stacks import deployment
from prunelab.core.exports import zipped_size

NAME = "published_results"
PUBLISHED_DENSE_ZIP = 1_601_609


@dataclass(frozen=True)
class Published:
    label: str
    test_accuracy: float | None
    zip_ratio: float | None
    ptq_ratio: float | None = None
    zip_bytes: int | None = None


PUBLISHED = {
    "dense": Published("dense baseline", None, 1.0, zip_bytes=PUBLISHED_DENSE_ZIP),
    "constant-87.5": Published("ConstantSparsity 87.5%", 0.9886, PUBLISHED_DENSE_ZIP / 388_071, zip_bytes=388_071),
    "polynomial-87.5": Published(
        "PolynomialDecay 0 -> 87.5%", 0.9927, PUBLISHED_DENSE_ZIP / 384_305, zip_bytes=384_305
    ),
    "polynomial-90": Published("PolynomialDecay 0 -> 90% (+ PTQ)", None, 6.0, ptq_ratio=24.0),
}


@dataclass(frozen=True)
class Size:
    label: str
    dataset: str
    model: str
    epochs: int
    batch_size: int = 250
    validation_split: float = 0.2


SIZES = {
    "tiny": Size("digits, mlp, 2 epochs, batch 32", "digits", "mlp", 2, batch_size=32),
    "quick": Size("MNIST, mnist_cnn, 1 epoch (QUICK: the tutorial trains 30)", "mnist", "mnist_cnn", 1),
    "full": Size("MNIST, mnist_cnn, 30 epochs (the tutorial's setting)", "mnist", "mnist_cnn", 30),
}


def run_specs(size: Size) -> dict[str, dict]:  # type: ignore[type-arg]
    total, base = workloads.tutorial_training(
        size.dataset, size.model, size.epochs, size.batch_size, size.validation_split
    )
    # A 0% ConstantSparsity keeps every weight: the dense baseline trains through the same code path.
    schedule_for = {
        "dense": workloads.constant(total, 0.0),
        "constant-87.5": workloads.constant(total, 0.875),
        "polynomial-87.5": workloads.polynomial(total, 0.875),
        "polynomial-90": workloads.polynomial(total, 0.90),
    }
    return {
        key: {**base, "name": f"bench {key}", "schedule": schedule.model_dump(mode="json")}
        for key, schedule in schedule_for.items()
    }


def ptq_zip_bytes(keras_model: bytes, scratch: Path) -> int:
    """Post-training dynamic-range quantization of the downloaded stripped model, zipped as the tutorials zip."""
    from prunelab.worker.training.tf import keras, tf

    scratch.mkdir(parents=True, exist_ok=True)
    source = scratch / "model.keras"
    source.write_bytes(keras_model)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(source))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    target = scratch / "model.tflite"
    target.write_bytes(converter.convert())
    return zipped_size(target)


def run(size: Size) -> Result:
    started = time.monotonic()
    specs = run_specs(size)
    runs: dict[str, dict] = {}  # type: ignore[type-arg]
    ptq: dict[str, int] = {}
    with deployment("postgresql+redis", workers=1) as stack, tempfile.TemporaryDirectory() as scratch:
        ids = {key: stack.submit(spec) for key, spec in specs.items()}
        for key, run_id in ids.items():
            runs[key] = stack.finish(run_id)
        for key in ("dense", "polynomial-90"):
            model = httpx.get(f"{stack.base_url}/api/runs/{ids[key]}/model", params={"format": "keras"}, timeout=60)
            model.raise_for_status()
            ptq[key] = ptq_zip_bytes(model.content, Path(scratch) / key)

    dense_zip = runs["dense"]["summary"]["h5_zip_bytes"]
    rows = []
    figures: dict[str, float | str] = {}
    for key, run in runs.items():
        summary = run["summary"]
        published = PUBLISHED[key]
        zip_bytes = summary["h5_zip_bytes"]
        zip_ratio = ratio(dense_zip, zip_bytes)
        ptq_ratio = ratio(dense_zip, ptq.get(key))
        rows.append(
            [
                published.label,
                run["id"],
                summary["measured_sparsity"],
                summary["test_accuracy"],
                published.test_accuracy,
                zip_bytes,
                published.zip_bytes,
                zip_ratio,
                published.zip_ratio,
                ptq.get(key),
                ptq_ratio,
                published.ptq_ratio,
            ]
        )
        figures[f"accuracy_{key}"] = summary["test_accuracy"]
        figures[f"zip_ratio_{key}"] = zip_ratio or 0.0
        if ptq_ratio is not None:
            figures[f"ptq_ratio_{key}"] = ptq_ratio
    plan = runs["constant-87.5"]["plan"]
    table = Table(
        f"Published results: {size.label}; {plan['total_steps']} steps, pruning from step "
        f"{plan['schedule']['begin_step']} every {plan['schedule']['frequency']} steps to the last",
        [
            "run",
            "id",
            "measured sparsity",
            "test accuracy",
            "published",
            "zipped .h5 B",
            "published B",
            "x smaller than dense",
            "published x",
            "PTQ .tflite zipped B",
            "PTQ x smaller",
            "published PTQ x",
        ],
        rows,
    )
    notes = [
        "Each row is a run submitted with `POST /api/runs` to a real API and Celery worker (PostgreSQL + Redis); "
        "accuracy and zipped size are read back from `GET /api/runs/{id}` (the stripped model's .h5 without optimizer, "
        "ZIP_DEFLATED, as the tutorials measure it). PTQ: the stripped model downloaded from "
        "`GET /api/runs/{id}/model?format=keras`, converted with `TFLiteConverter` + `Optimize.DEFAULT`, zipped.",
        "Ratios are against this run's own dense baseline (a 0% ConstantSparsity run). Our `mnist_cnn` pads 'same' and "
        "has no dropout, so its bytes are about twice the tutorial's; compare the ratios, not the bytes.",
        "Schedules: ConstantSparsity(0.875) and PolynomialDecay(0 -> 0.875, power 3) from int(0.2 x total steps) to "
        "the last step, frequency 100 (the tutorial's default; a quarter of the window on runs too short for it). The "
        "90% run uses the same PolynomialDecay window with final sparsity 0.9.",
    ]
    if size.epochs < 30 and size.dataset == "mnist":
        notes.insert(0, f"QUICK MODE: {size.epochs} epoch(s) instead of the tutorial's 30; accuracies are lower.")
    labels = [row[0] for row in rows]
    chart = go.Figure(
        [
            go.Bar(name="PruneLab: x smaller than dense (zip)", x=labels, y=[row[7] for row in rows]),
            go.Bar(name="published (zip)", x=labels, y=[row[8] for row in rows]),
            go.Bar(name="PruneLab: x smaller with PTQ", x=labels, y=[row[10] for row in rows]),
            go.Bar(name="published (PTQ)", x=labels, y=[row[11] for row in rows]),
        ],
        layout={"title": f"Compression against the dense baseline ({size.label})", "barmode": "group"},
    )
    return Result(
        NAME,
        "2. Published results",
        size.label,
        [table],
        figures,
        notes,
        charts={"published_results": chart},
        elapsed_s=time.monotonic() - started,
    )
