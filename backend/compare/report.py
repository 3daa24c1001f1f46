"""A comparison as one self-contained HTML file: Plotly's JavaScript embedded, no network needed to open it."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prunelab.server.compare.groups import CurvesOut, FrontierOut, GroupedReport, GroupsOut
from prunelab.server.compare.service import PALETTE, SIZE_KEY, CompareOut, frontier, size_points

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


def _mean_std(summary: Any) -> str:
    if summary.mean is None:
        return "—"
    return f"{summary.mean:.4g}" + (f" ± {summary.std:.2g}" if summary.std is not None else "")


def group_table(groups: GroupsOut) -> str:
    """One row per group: its fields, n, failed and pending runs, mean ± std (ddof=1) of each metric."""
    header = [*groups.by, "n", "failed", "pending", *[f"{metric} (mean ± std)" for metric in groups.metrics]]
    rows = [
        [
            *[group.key[field] for field in groups.by],
            len(group.run_ids),
            len(group.failed_run_ids),
            len(group.pending_run_ids),
            *[_mean_std(group.metrics[metric]) for metric in groups.metrics],
        ]
        for group in groups.groups
    ]
    return _table(header, rows)


def frontier_figure(frontier_data: FrontierOut, log_x: bool = False) -> Any:
    """Mean metric against mean x per group, error bars of one std both ways, one line per variant, Pareto stars."""
    import plotly.graph_objects as go

    figure = go.Figure()
    variants = list(dict.fromkeys(point.variant for point in frontier_data.points))
    for index, variant in enumerate(variants):
        points = sorted(
            (point for point in frontier_data.points if point.variant == variant and point.x.mean is not None),
            key=lambda point: point.x.mean or 0.0,
        )
        figure.add_trace(
            go.Scatter(
                x=[point.x.mean for point in points],
                y=[point.y.mean for point in points],
                error_x={"type": "data", "array": [point.x.std or 0 for point in points]},
                error_y={"type": "data", "array": [point.y.std or 0 for point in points]},
                text=[f"{point.label} (n = {point.n})" for point in points],
                mode="lines+markers",
                marker={"size": 11, "symbol": ["star" if point.pareto else "circle" for point in points]},
                line={"color": PALETTE[index % len(PALETTE)]},
                name=variant,
                meta={"metric": "group_frontier", "variant": variant, "n": [point.n for point in points]},
            )
        )
    if frontier_data.baseline is not None and frontier_data.baseline.y is not None:
        figure.add_hline(
            y=frontier_data.baseline.y,
            line={"dash": "dash", "color": "#7f7f7f"},
            annotation_text=f"dense baseline #{frontier_data.baseline.run_id}",
        )
    figure.update_layout(
        title=f"{frontier_data.metric} against {frontier_data.x_key} per group (mean ± std; stars: Pareto front)",
        xaxis_title=frontier_data.x_key,
        xaxis_type="log" if log_x else "linear",
        yaxis_title=frontier_data.metric,
        height=420,
        template="plotly_white",
    )
    return figure


def parcoords_figure(groups: GroupsOut, metric: str) -> Any:
    """The grouped fields against the metric's group mean, one line per group."""
    import plotly.graph_objects as go

    dimensions = []
    for field in groups.by:
        values = [group.key[field] for group in groups.groups]
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
            dimensions.append({"label": field, "values": values})
        else:
            names = list(dict.fromkeys(str(value) for value in values))
            dimensions.append(
                {
                    "label": field,
                    "values": [names.index(str(value)) for value in values],
                    "tickvals": list(range(len(names))),
                    "ticktext": names,
                }
            )
    means = [group.metrics[metric].mean for group in groups.groups]
    dimensions.append({"label": metric, "values": means})
    figure = go.Figure(
        go.Parcoords(
            line={"color": means, "colorscale": "Viridis", "showscale": True},
            dimensions=dimensions,
            meta={"metric": "group_parcoords"},
        )
    )
    figure.update_layout(title=f"Grouped fields against mean {metric}", height=400, template="plotly_white")
    return figure


def curves_figure(curves: CurvesOut) -> Any:
    """Each group's mean line with its band (filled between the edges) and n at each x in the hover."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for index, group in enumerate(curves.groups):
        color = PALETTE[index % len(PALETTE)]
        figure.add_trace(
            go.Scatter(
                x=curves.grid, y=group.band.upper, mode="lines", line={"width": 0}, showlegend=False,
                legendgroup=group.label, hoverinfo="skip", meta={"metric": "group_band_upper", "group": group.label},
            )
        )  # fmt: skip
        figure.add_trace(
            go.Scatter(
                x=curves.grid, y=group.band.lower, mode="lines", line={"width": 0}, fill="tonexty",
                fillcolor=color + "33", showlegend=False, legendgroup=group.label, hoverinfo="skip",
                meta={"metric": "group_band_lower", "group": group.label},
            )
        )  # fmt: skip
        figure.add_trace(
            go.Scatter(
                x=curves.grid,
                y=group.band.mean,
                customdata=group.band.n,
                hovertemplate="%{y:.4g} (n = %{customdata})",
                mode="lines",
                line={"color": color},
                name=f"{group.label} (n = {max(group.band.n, default=0)})",
                legendgroup=group.label,
                meta={"metric": "group_mean", "group": group.label, "n": group.band.n},
            )
        )
    figure.update_layout(
        title=f"{curves.metric}: group mean and {curves.band} band (hover: runs counted at each x)",
        xaxis_title=curves.x,
        yaxis_title=curves.metric,
        height=420,
        template="plotly_white",
    )
    return figure


def _grouped_html(grouped: GroupedReport) -> str:
    sentences = "".join(f"<li>{html.escape(difference.sentence)}</li>" for difference in grouped.comparisons)
    return f"""<h2>Groups by {html.escape(", ".join(grouped.groups.by))}</h2>
{group_table(grouped.groups)}
<h2>Comparisons of {html.escape(grouped.metric)} (Welch, 95% CI)</h2>
{f"<ul>{sentences}</ul>" if sentences else "<p>No two groups differ in exactly one field.</p>"}
"""


@dataclass(frozen=True)
class SweepAppendix:
    """What a sweep's report adds: its name, its spec as submitted and each point's run and status."""

    sweep_id: int
    name: str
    spec: dict[str, Any]
    points: list[tuple[str, int | None, str]]  # label, run id, status


def _sweep_html(sweep: SweepAppendix) -> str:
    spec = html.escape(json.dumps(sweep.spec, indent=2, sort_keys=True))
    rows = [[label, f"#{run_id}" if run_id is not None else "-", status] for label, run_id, status in sweep.points]
    return f"""<h2>The sweep's spec</h2>
<pre>{spec}</pre>
<h2>Points</h2>
{_table(["point", "run", "status"], rows)}
"""


def build_report(
    data: CompareOut | None, grouped: GroupedReport | None = None, sweep: SweepAppendix | None = None
) -> str:
    """The HTML text of the report; Plotly's JavaScript is embedded once. A sweep's report adds its spec and
    points after the groups, comparisons and charts."""
    figures = [*_metric_figures(data), _pareto_figure(data)] if data is not None else []
    if grouped is not None:
        figures = [
            frontier_figure(grouped.frontier),
            parcoords_figure(grouped.groups, grouped.metric),
            curves_figure(grouped.curves),
            *figures,
        ]
    plots = [
        figure.to_html(full_html=False, include_plotlyjs=index == 0, config={"displaylogo": False})
        for index, figure in enumerate(figures)
    ]
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    grouped_text = _grouped_html(grouped) if grouped is not None else ""
    if data is None:
        assert grouped is not None, "a report needs runs or groups"
        count = sum(len(group.run_ids) for group in grouped.groups.groups)
        title = f"groups by {', '.join(grouped.groups.by)}"
        if sweep is not None:
            title = f"sweep #{sweep.sweep_id} {sweep.name}".strip()
        appendix = _sweep_html(sweep) if sweep is not None else ""
        return _page(title, f"<p>{count} runs, generated {created}.</p>",
                     grouped_text + "<h2>Charts</h2>" + "".join(plots) + appendix)  # fmt: skip
    names = [_label(run) for run in data.runs]
    final_rows = [[title, *[(run.summary or {}).get(key) for run in data.runs]] for key, title in FINAL_METRICS]
    difference_rows = [[row.parameter, *[row.values.get(run.id) for run in data.runs]] for row in data.differences]
    baseline = f" Baseline: run #{data.baseline_id} (dashed)." if data.baseline_id is not None else ""
    return _page(
        ", ".join(names),
        f"<p>{len(data.runs)} runs, generated {created}.{baseline}</p>",
        f"""{grouped_text}<h2>Final metrics</h2>
{_table(["", *names], final_rows)}
<h2>Parameters that differ</h2>
{_table(["parameter", *names], difference_rows) if difference_rows else "<p>The runs share every parameter.</p>"}
<h2>Curves</h2>
{"".join(plots)}""",
    )


def _page(title: str, intro: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PruneLab report: {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2733; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ccd; padding: 0.25rem 0.6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head>
<body>
<h1>PruneLab comparison</h1>
{intro}
{body}
</body></html>
"""
