"""The seed's question at the other sparsities: ConstantSparsity vs PolynomialDecay at 50, 75 and 95%.

The same recipe as the seed's question (bench/seed_question.py) with a `sparsity` axis, at fewer epochs and
seeds than the 87.5% answer (two cores), as one sweep through the API and a worker. Per sparsity and schedule:
n, mean +- std of test accuracy and zipped size from `GET /api/groups`; per sparsity, PolynomialDecay minus
ConstantSparsity from `GET /api/groups/compare` (Welch), each recomputed with scipy from the runs' summaries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import plotly.graph_objects as go

from bench.report import Result, Table
from bench.seed_question import finished_sweep, sweep_spec, welch

NAME = "seed_frontier"
BY = "tag:variant,tag:sparsity"


@dataclass(frozen=True)
class Size:
    label: str
    dataset: str
    model: str
    epochs: int
    seeds: int
    sparsities: tuple[float, ...]
    batch_size: int = 250
    validation_split: float = 0.2


SIZES = {
    "tiny": Size("digits, mlp, 1 epoch, batch 32, 2 seeds, 50 / 95%", "digits", "mlp", 1, 2, (0.5, 0.95),
                 batch_size=32),
    "quick": Size("MNIST, tutorial_mnist_cnn, 1 epoch, 2 seeds, 50 / 75 / 95% (QUICK)", "mnist",
                  "tutorial_mnist_cnn", 1, 2, (0.5, 0.75, 0.95)),
    "full": Size("MNIST, tutorial_mnist_cnn, 10 epochs (the 87.5% answer trains 30), 3 seeds, 50 / 75 / 95%",
                 "mnist", "tutorial_mnist_cnn", 10, 3, (0.5, 0.75, 0.95)),
}  # fmt: skip


def run(size: Size) -> Result:
    started = time.monotonic()
    spec = sweep_spec(size, size.sparsities[0])
    spec["axes"] = [{"path": "sparsity", "values": list(size.sparsities)}]
    spec["name"] = "The seed's question at other sparsities"
    with finished_sweep(spec) as (api, sweep):
        scope = {"by": BY, "filter": f'tag:"{sweep["tag"]}"'}
        metrics = "test_accuracy,h5_zip_bytes,measured_sparsity"
        groups = api.get("/api/groups", params={**scope, "metrics": metrics}).raise_for_status().json()
        labels = {(g["key"]["tag:variant"], g["key"]["tag:sparsity"]): g["label"] for g in groups["groups"]}
        answers = {
            sparsity: api.get(
                "/api/groups/compare",
                params={**scope, "a": labels["polynomial", sparsity], "b": labels["constant", sparsity]},
            )
            .raise_for_status()
            .json()
            for sparsity in sorted({sparsity for _, sparsity in labels}, key=float)
        }
    detail = sweep
    accuracy: dict[tuple[str, str], list[float]] = {}
    for point, one in zip(detail["points"], detail["runs"], strict=True):
        key = (point["variant"], str(point["values"]["sparsity"]))
        accuracy.setdefault(key, []).append(one["summary"]["test_accuracy"])

    group_rows = []
    figures: dict[str, float | str] = {"runs": float(len(detail["runs"]))}
    for group in groups["groups"]:
        variant, sparsity = group["key"]["tag:variant"], group["key"]["tag:sparsity"]
        summary, zipped = group["metrics"]["test_accuracy"], group["metrics"]["h5_zip_bytes"]
        group_rows.append([sparsity, variant, summary["n"], summary["mean"], summary["std"], zipped["mean"],
                           group["metrics"]["measured_sparsity"]["mean"]])  # fmt: skip
        figures[f"accuracy_mean_{variant}_{sparsity}"] = summary["mean"]
    comparison_rows = []
    for sparsity, answer in answers.items():
        ours = welch(accuracy["polynomial", sparsity], accuracy["constant", sparsity])
        gap = max(abs(ours[i] - answer[key]) for i, key in enumerate(("difference", "ci_low", "ci_high", "p_value")))
        comparison_rows.append([sparsity, answer["n_a"], answer["n_b"], answer["difference"], answer["ci_low"],
                                answer["ci_high"], answer["p_value"], answer["sentence"], gap])  # fmt: skip
        figures[f"difference_{sparsity}"] = answer["difference"]
        figures[f"sentence_{sparsity}"] = answer["sentence"]
    tables = [
        Table(
            f"Per sparsity and schedule ({size.label}; GET /api/groups over sweep {sweep['id']})",
            ["sparsity", "schedule", "n", "test accuracy mean", "std", "zipped .h5 B mean", "measured sparsity"],
            group_rows,
        ),
        Table(
            "PolynomialDecay - ConstantSparsity per sparsity (GET /api/groups/compare: Welch's t-test)",
            ["sparsity", "n polynomial", "n constant", "difference", "95% CI low", "95% CI high", "p-value",
             "the server's sentence", "largest gap to scipy here"],
            comparison_rows,
        ),
    ]  # fmt: skip
    notes = [
        f"One sweep of {len(detail['runs'])} runs: 2 schedules x {len(size.sparsities)} sparsities x {size.seeds} "
        f"seeds, the seed's recipe at {size.epochs} epoch(s) (pruning from 20% of training to the end every 100 "
        "steps). With 2 seeds a side, Welch's interval is wide: the sentence says when it does not resolve.",
    ]
    chart = go.Figure(
        [
            go.Scatter(
                x=[float(row[0]) for row in group_rows if row[1] == variant],
                y=[row[3] for row in group_rows if row[1] == variant],
                error_y={"array": [row[4] or 0 for row in group_rows if row[1] == variant]},
                mode="lines+markers",
                name=variant,
            )
            for variant in ("constant", "polynomial")
        ],
        layout={"title": f"Test accuracy against sparsity ({size.label})", "xaxis": {"title": "target sparsity"}},
    )
    return Result(
        NAME,
        "11b. The seed's question at other sparsities",
        size.label,
        tables,
        figures,
        notes,
        charts={"seed_frontier": chart},
        elapsed_s=time.monotonic() - started,
    )
