"""Benchmark: the smallest model at a given accuracy, with the seeds' own CNN, through PruneLab's API.

The seed 003 table (tfmot's schedules comparison, the 431,242-parameter MNIST CNN, 30 epochs, batch 250,
validation split 0.2, 87.5% sparsity from 20% of training to the end): ConstantSparsity 98.86% test
accuracy and 388,071 B zipped .h5; PolynomialDecay 99.27% and 384,305 B. Then the collaborative chain
prune -> cluster -> PCQAT -> full-integer TFLite, against the dense run of the same model in the same
bench run: goal >= 20x smaller than the dense zipped .h5 at <= 0.3 points on MNIST, >= 15x at <= 0.5
points on Fashion-MNIST; every stage's file against the information floor of its own weights.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from bench import workloads
from bench.report import Result, Table
from bench.stacks import deployment
from bench.training_overhead import trial as plain_trial
from harness.stack import StackConfig
from prunelab.core.specs import RunSpec

NAME = "compression"
PUBLISHED = {"constant": (0.9886, 388_071), "polynomial": (0.9927, 384_305)}
ACCURACY_TOLERANCE = 0.003  # 0.3 points of the published accuracy
SIZE_TOLERANCE = 0.03  # 3% of the published zipped size
GOALS = {"mnist": (20.0, 0.003), "fashion_mnist": (15.0, 0.005)}  # x smaller than dense, accuracy loss


@dataclass(frozen=True)
class Chain:
    """The compress stages one pruned run carries (its pruning phase is the seed table's run)."""

    clusters: int
    cluster_epochs: int
    cluster_learning_rate: float
    qat_epochs: int
    qat_learning_rate: float

    def stages(self) -> list[dict[str, Any]]:
        return [
            {
                "kind": "cluster",
                "number_of_clusters": self.clusters,
                "centroid_init": "kmeans_plus_plus",
                "preserve_sparsity": True,
                "epochs": self.cluster_epochs,
                "learning_rate": self.cluster_learning_rate,
            },
            {"kind": "qat", "scheme": "pcqat", "epochs": self.qat_epochs, "learning_rate": self.qat_learning_rate},
            {"kind": "tflite_int8", "calibration_examples": 100},
        ]


@dataclass(frozen=True)
class Size:
    label: str
    datasets: tuple[str, ...]
    model: str
    epochs: int
    batch_size: int
    validation_split: float
    chain: Chain
    alternative: Chain | None = None  # a second cluster setting, carried by the ConstantSparsity run


SIZES = {
    "tiny": Size(
        "digits, mlp, 1 epoch + 1-epoch stages (the smoke test's size; the seeds' CNN needs 10x10 images)",
        ("digits",),
        "mlp",
        1,
        64,
        0.1,
        Chain(16, 1, 1e-4, 1, 1e-5),
    ),
    "quick": Size(
        "MNIST and Fashion-MNIST, tutorial_mnist_cnn, 2 epochs + 1-epoch stages (QUICK: the seed trains 30)",
        ("mnist", "fashion_mnist"),
        "tutorial_mnist_cnn",
        2,
        250,
        0.2,
        Chain(16, 1, 1e-5, 1, 1e-5),
        alternative=Chain(8, 1, 1e-5, 1, 1e-5),
    ),
    "full": Size(
        "MNIST and Fashion-MNIST, tutorial_mnist_cnn, 30 epochs (the seed's setting) + 2-epoch stages",
        ("mnist", "fashion_mnist"),
        "tutorial_mnist_cnn",
        30,
        250,
        0.2,
        Chain(16, 2, 1e-5, 2, 1e-5),
        alternative=Chain(8, 2, 1e-5, 2, 1e-5),
    ),
}


def run_specs(size: Size, dataset: str) -> dict[str, dict[str, Any]]:
    total, base = workloads.tutorial_training(dataset, size.model, size.epochs, size.batch_size, size.validation_split)
    base |= {"exports": ["h5", "tflite_int8"], "int8_quantization": "full_integer"}
    # A 0% ConstantSparsity run keeps every weight: the dense baseline trains through the same code path.
    specs = {
        "dense": {**base, "schedule": workloads.constant(total, 0.0).model_dump(mode="json")},
        "polynomial": {
            **base,
            "schedule": workloads.polynomial(total, 0.875).model_dump(mode="json"),
            "compress": size.chain.stages(),
        },
    }
    if dataset == "mnist" or size.datasets == ("digits",):
        specs["constant"] = {**base, "schedule": workloads.constant(total, 0.875).model_dump(mode="json")}
        if size.alternative is not None:
            specs["constant"]["compress"] = size.alternative.stages()
    return {key: {**spec, "name": f"bench {dataset} {key}"} for key, spec in specs.items()}


def _stage(run: dict[str, Any], kind: str) -> dict[str, Any] | None:
    stages = run["summary"].get("compression", {}).get("stages", [])
    return next((stage for stage in stages if stage["stage"] == kind), None)


def plain_script_runs(size: Size) -> dict[str, dict[str, float]]:
    """The seed table's two runs as the plain tfmot script trains them (same spec and seed), one fresh process each."""
    dataset = size.datasets[0]
    with tempfile.TemporaryDirectory(prefix="bench-compression-plain-") as home:
        config = StackConfig(home=Path(home), database_url="", broker_url="")
        return {
            key: plain_trial("plain", RunSpec.model_validate(spec), config)
            for key, spec in run_specs(size, dataset).items()
            if key in PUBLISHED
        }


def seed_row(
    dataset: str,
    run: str,
    run_id: int | None,
    sparsity: float,
    accuracy: float,
    zip_bytes: int,
    dense_zip: int,
    published: tuple[float, int] | None,
) -> list[Any]:
    """One row of the seed table: the run's figures, the published ones and the differences (None off MNIST)."""
    published_accuracy, published_zip = published or (None, None)
    return [
        dataset,
        run,
        run_id,
        sparsity,
        accuracy,
        published_accuracy,
        accuracy - published_accuracy if published_accuracy is not None else None,
        zip_bytes,
        published_zip,
        zip_bytes / published_zip - 1 if published_zip is not None else None,
        dense_zip / zip_bytes,
    ]


def run(size: Size) -> Result:
    started = time.monotonic()
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    with deployment("postgresql+redis", workers=1) as stack:
        ids: dict[str, dict[str, int]] = {
            dataset: {key: stack.submit(spec) for key, spec in run_specs(size, dataset).items()}
            for dataset in size.datasets
        }
        for dataset, submitted in ids.items():
            runs[dataset] = {key: stack.finish(run_id) for key, run_id in submitted.items()}
    plain = plain_script_runs(size)

    figures: dict[str, float | str] = {}
    seed_rows = []
    stage_rows = []
    xnnpack_rows = []
    chart = go.Figure(layout={"title": f"Test accuracy against zipped size ({size.label})", "xaxis_type": "log"})
    for dataset, keyed in runs.items():
        dense = keyed["dense"]["summary"]
        dense_zip, dense_accuracy = dense["h5_zip_bytes"], dense["test_accuracy"]
        seed_rows.append(
            [dataset, "dense", keyed["dense"]["id"], 0.0, dense_accuracy, None, None, dense_zip, 1_601_609, None, 1.0]
        )
        for key in ("constant", "polynomial"):
            if key not in keyed:
                continue
            summary = keyed[key]["summary"]
            published = PUBLISHED[key] if dataset == "mnist" else None
            row = seed_row(
                dataset,
                key,
                keyed[key]["id"],
                summary["measured_sparsity"],
                summary["test_accuracy"],
                summary["h5_zip_bytes"],
                dense_zip,
                published,
            )
            seed_rows.append(row)
            accuracy_gap, size_gap = row[6], row[9]
            figures[f"accuracy_{dataset}_{key}"] = summary["test_accuracy"]
            if dataset == size.datasets[0] and key in plain:
                script = plain[key]
                seed_rows.append(
                    seed_row(
                        dataset,
                        f"{key}, plain tfmot script",
                        None,
                        script["kernel_sparsity"],
                        script["test_accuracy"],
                        script["h5_zip_bytes"],
                        dense_zip,
                        published,
                    )
                )
                figures[f"plain_accuracy_{dataset}_{key}"] = script["test_accuracy"]
            if accuracy_gap is not None and size_gap is not None:
                figures[f"accuracy_gap_{key}"] = abs(accuracy_gap)
                figures[f"size_gap_{key}"] = abs(size_gap)
            stages = summary.get("compression", {}).get("stages", [])
            chain = "chain" if key == "polynomial" else "alternative"
            for stage in stages:
                loss = dense_accuracy - stage["test_accuracy"]
                stage_rows.append(
                    [
                        dataset,
                        f"{key}: {stage['stage']}" + (" (reference)" if stage["reference"] else ""),
                        stage["export"],
                        stage["test_accuracy"],
                        loss * 100,
                        stage["size_bytes"],
                        stage["zip_bytes"],
                        stage["floor_bytes"],
                        stage["floor_variant"],
                        stage["zip_over_floor"],
                        stage["x_smaller_than_dense"],
                        max(layer["sparsity"] for layer in stage["layers"].values()),
                        max(layer["unique_values"] for layer in stage["layers"].values()),
                    ]
                )
            final = _stage(keyed[key], "tflite_int8")
            if final is not None:
                figures[f"x_smaller_{dataset}_{chain}"] = final["x_smaller_than_dense"]
                figures[f"accuracy_loss_points_{dataset}_{chain}"] = (dense_accuracy - final["test_accuracy"]) * 100
                goal_x, goal_loss = GOALS.get(dataset, (None, None))
                if goal_x is not None and goal_loss is not None:
                    met = (
                        final["x_smaller_than_dense"] >= goal_x and dense_accuracy - final["test_accuracy"] <= goal_loss
                    )
                    figures[f"goal_met_{dataset}_{chain}"] = "yes" if met else "no"
            chart_stages = [stage for stage in stages if not stage["reference"]]
            if chart_stages:
                chart.add_trace(
                    go.Scatter(
                        name=f"{dataset} {key}",
                        x=[stage["zip_bytes"] for stage in chart_stages],
                        y=[stage["test_accuracy"] for stage in chart_stages],
                        text=[stage["stage"] for stage in chart_stages],
                        mode="lines+markers+text",
                        line_shape="hv",
                    )
                )
            sparse = summary.get("compression", {}).get("sparse_tflite")
            if sparse:
                qualification = sparse["xnnpack_sparse_inference"]
                xnnpack_rows.append(
                    [
                        dataset,
                        key,
                        sparse["float_size_bytes"],
                        sparse["sparse_size_bytes"],
                        "yes" if sparse["same_predictions"] else "no",
                        sparse["dense_latency_ms_xnnpack_on"],
                        sparse["sparse_latency_ms_xnnpack_on"],
                        sparse["dense_latency_ms_xnnpack_off"],
                        sparse["sparse_latency_ms_xnnpack_off"],
                        "yes" if qualification["qualifies"] else "no: " + "; ".join(qualification["reasons"]),
                    ]
                )
        chart.add_trace(go.Scatter(name=f"{dataset} dense", x=[dense_zip], y=[dense_accuracy], mode="markers"))
    tables = [
        Table(
            f"Seed 003 table through PruneLab: {size.label}",
            [
                "dataset",
                "run",
                "id",
                "measured sparsity",
                "test accuracy",
                "published",
                "difference",
                "zipped .h5 B",
                "published B",
                "size difference",
                "x smaller than dense",
            ],
            seed_rows,
        ),
        Table(
            "Compression stages (each a phase of the pruned run; loss in points against the dense run)",
            [
                "dataset",
                "stage",
                "export",
                "test accuracy",
                "loss (points)",
                "raw B",
                "zipped B",
                "floor B",
                "floor of",
                "zip / floor",
                "x smaller than dense .h5 zip",
                "max layer sparsity",
                "max values per layer (int8: per channel)",
            ],
            stage_rows,
        ),
    ]
    if xnnpack_rows:
        tables.append(
            Table(
                "Sparse TFLite (EXPERIMENTAL_SPARSITY) against the dense float file: "
                "batch-1 single-threaded latency (ms)",
                [
                    "dataset",
                    "run",
                    "dense float B",
                    "sparse float B",
                    "same predictions",
                    "dense, XNNPACK",
                    "sparse, XNNPACK",
                    "dense, no XNNPACK",
                    "sparse, no XNNPACK",
                    "XNNPACK sparse inference",
                ],
                xnnpack_rows,
            )
        )
    notes = [
        "Every run is submitted with `POST /api/runs` to a real API and Celery worker (PostgreSQL + Redis) and read "
        "back from `GET /api/runs/{id}`; the compress stages are the run spec's `compress` list, trained after pruning "
        "on the run's one step axis.",
        "The chain (PolynomialDecay run): cluster (kmeans++, sparsity preserved) -> PCQAT "
        "(Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)) -> full-integer TFLite calibrated on 100 "
        f"training images: {size.chain.stages()}. "
        + (
            f"The ConstantSparsity run carries the same chain with other settings: {size.alternative.stages()}."
            if size.alternative
            else ""
        ),
        "The `plain tfmot script` rows train the same spec and seed with the pruning_with_keras tutorial's script "
        "(prune_low_magnitude, UpdatePruningStep, fit, strip_pruning, save .h5), in a fresh process after the "
        "PruneLab runs; their sparsity is over every kernel.",
        "x smaller: the dense run's zipped .h5 over the stage's zipped file. Floor: mask entropy plus the kept values "
        "(float32, int8, or log2(k) bits per kept value and a k-entry codebook when clustered), biases at 32 bits, "
        "computed from the stage's own weights (the int8 stages from the TFLite file's tensors).",
        f"Goals: MNIST >= {GOALS['mnist'][0]:.0f}x at <= {GOALS['mnist'][1] * 100:.1f} points; Fashion-MNIST >= "
        f"{GOALS['fashion_mnist'][0]:.0f}x at <= {GOALS['fashion_mnist'][1] * 100:.1f} points; the seed table within "
        f"{ACCURACY_TOLERANCE * 100:.1f} points and {SIZE_TOLERANCE:.0%} of the published size.",
    ]
    if size.epochs < 30:
        notes.insert(
            0, f"{size.epochs} epoch(s) instead of the seed's 30: accuracies and sizes are not the published ones."
        )
    return Result(
        NAME,
        "Compression: the smallest model at a given accuracy",
        size.label,
        tables,
        figures,
        notes,
        charts={"compression_staircase": chart},
        elapsed_s=time.monotonic() - started,
    )
