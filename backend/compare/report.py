"""A comparison as one self-contained HTML file: Plotly's JavaScript embedded, no network needed to open it."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from prunelab.server.compare.service import SIZE_KEY, CompareOut, frontier, size_points

METRIC_TITLES = {
    "measured_sparsity": "Sparsity: measured (solid) and planned (dotted)",
    "loss": "Loss",
    "accuracy": "Accuracy (batch)",
    "val_accuracy": "Validation accuracy",
    "compressed_size_bytes": "Compressed size of the weights (bytes)",
}
FINAL_METRICS = (
    ("test_accuracy", "test accuracy"),
    ("measured_sparsity", "final sparsity"),
    (SIZE_KEY, "zipped .keras (bytes)"),
    ("param_count", "parameters"),
    ("nonzero_params", "non-zero parameters"),
    ("wall_time_s", "wall time (s)"),
)


def _label(run: Any) -> str:
    return f"#{run.id} {run.name}"


def _metric_figures(data: CompareOut) -> list[Any]:
    import plotly.graph_objects as go

    figures = []
    plotted = [key for key in data.keys if key != "target_sparsity"]  # drawn as the planned curve instead
    for key in plotted:
        figure = go.Figure()
        for run in data.runs:
            series = data.series[run.id].get(key)
            if series is None or not series.steps:
                continue
            baseline = run.id == data.baseline_id
            figure.add_trace(
                go.Scatter(
                    x=series.steps,
                    y=series.values,
                    mode="lines",
                    name=_label(run) + (" (baseline)" if baseline else ""),
                    line={"color": data.colors[run.id], "dash": "dash" if baseline else "solid"},
                    legendgroup=str(run.id),
                    meta={"run_id": run.id, "metric": key},
                )
            )
            if key == "measured_sparsity":
                planned = data.planned[run.id]
                figure.add_trace(
                    go.Scatter(
                        x=planned.steps,
                        y=planned.target_sparsity,
                        mode="lines",
                        line={"color": data.colors[run.id], "dash": "dot", "shape": "hv"},
                        name=_label(run) + " planned",
                        legendgroup=str(run.id),
                        showlegend=False,
                        meta={"run_id": run.id, "metric": "planned_sparsity"},
                    )
                )
        figure.update_layout(
            title=METRIC_TITLES.get(key, key), xaxis_title="step", yaxis_title=key, height=420, template="plotly_white"
        )
        figures.append(figure)
    return figures


def _pareto_figure(data: CompareOut) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    front = frontier(data.runs)
    for run in data.runs:
        points = size_points(run)
        if not points:
            continue
        figure.add_trace(
            go.Scatter(
                x=[point.zipped for point in points],
                y=[point.accuracy for point in points],
                text=[_label(run) + (f" · {point.stage}" if point.stage else "") for point in points],
                mode="lines+markers" if len(points) > 1 else "markers",
                line={"color": data.colors[run.id], "width": 1, "shape": "vh"},
                marker={
                    "color": data.colors[run.id],
                    "size": 12,
                    "symbol": ["star" if point in front else "circle" for point in points],
                },
                name=_label(run),
                meta={"run_id": run.id, "metric": "pareto"},
            )
        )
    figure.add_trace(
        go.Scatter(
            x=[point.zipped for point in front],
            y=[point.accuracy for point in front],
            mode="lines",
            line={"color": "black", "dash": "dot", "shape": "hv"},
            name="Pareto frontier",
            meta={"metric": "pareto_frontier"},
        )
    )
    staged = any(point.stage for point in front)
    figure.update_layout(
        title="Test accuracy against zipped size, each compress stage a point (stars: Pareto frontier)",
        xaxis_title="zipped file (bytes; .keras, or each stage's file)",
        xaxis_type="log" if staged else "linear",
        yaxis_title="test accuracy",
        height=420,
        template="plotly_white",
    )
    return figure


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def build_report(data: CompareOut) -> str:
    """The HTML text of the report; Plotly's JavaScript is embedded once."""
    figures = [*_metric_figures(data), _pareto_figure(data)]
    plots = [
        figure.to_html(full_html=False, include_plotlyjs=index == 0, config={"displaylogo": False})
        for index, figure in enumerate(figures)
    ]
    names = [_label(run) for run in data.runs]
    final_rows = [[title, *[(run.summary or {}).get(key) for run in data.runs]] for key, title in FINAL_METRICS]
    difference_rows = [[row.parameter, *[row.values.get(run.id) for run in data.runs]] for row in data.differences]
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PruneLab report: {html.escape(", ".join(names))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2733; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ccd; padding: 0.25rem 0.6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head>
<body>
<h1>PruneLab comparison</h1>
<p>{len(data.runs)} runs, generated {created}.{
        f" Baseline: run #{data.baseline_id} (dashed)." if data.baseline_id is not None else ""
    }</p>
<h2>Final metrics</h2>
{_table(["", *names], final_rows)}
<h2>Parameters that differ</h2>
{_table(["parameter", *names], difference_rows) if difference_rows else "<p>The runs share every parameter.</p>"}
<h2>Curves</h2>
{"".join(plots)}
</body></html>
"""
