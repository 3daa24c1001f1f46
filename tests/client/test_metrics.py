"""Metrics through the client: dicts of series, a pandas DataFrame of the full history, CSV and Parquet files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prunelab import Client, PruneLabError, Run


def test_series_as_dicts_every_step_and_only_the_keys_asked_for(client: Client, trained: Run) -> None:
    series = client.metrics(trained.id)
    for key in ("loss", "accuracy", "target_sparsity", "measured_sparsity"):
        assert series[key]["steps"] == list(range(1, 22)), key
        assert len(series[key]["values"]) == len(series[key]["wall_times"]) == 21
    assert series["measured_sparsity"]["values"][-1] == pytest.approx(0.5, abs=0.01)
    only = client.metrics(trained.id, ["loss", "measured_sparsity"])
    assert set(only) == {"loss", "measured_sparsity"} and only["loss"] == series["loss"]
    window = client.metrics(trained.id, ["loss"], start_step=5, end_step=9)
    assert window["loss"]["steps"] == [5, 6, 7, 8, 9]
    keys = client.metric_keys(trained.id)
    assert keys["loss"] == 21 and set(series) == set(keys)


def test_a_dataframe_holds_every_point_the_dicts_hold(client: Client, trained: Run) -> None:
    pytest.importorskip("pandas")
    frame = client.metrics_frame(trained.id)
    assert list(frame.columns) == ["key", "step", "value", "wall_time"]
    series = client.metrics(trained.id)
    assert len(frame) == sum(len(points["steps"]) for points in series.values())
    loss = frame[frame["key"] == "loss"].sort_values("step")
    assert loss["step"].tolist() == series["loss"]["steps"]
    pairs = zip(loss["value"].tolist(), series["loss"]["values"], strict=True)
    assert all(b is not None and math.isclose(a, b, rel_tol=1e-6) for a, b in pairs)


def test_exports_are_written_as_csv_and_parquet(client: Client, trained: Run, tmp_path: Path) -> None:
    written = client.export_metrics(trained.id, tmp_path / "history.csv")
    parquet = client.export_metrics(trained.id, tmp_path / "history.parquet", "parquet")
    rows = list(csv.reader(written.read_text().splitlines()))
    assert rows[0] == ["key", "step", "value", "wall_time"]
    table = pq.read_table(parquet)
    assert table.num_rows == len(rows) - 1 and table.column_names == ["key", "step", "value", "wall_time"]
    assert not list(tmp_path.glob("*.part"))


def test_metrics_of_a_missing_run_raise_the_servers_404(client: Client) -> None:
    with pytest.raises(PruneLabError) as missing:
        client.metrics(987654)
    assert missing.value.status_code == 404
    with pytest.raises(PruneLabError) as missing_export:
        client.export_metrics(987654, "never.csv")
    assert missing_export.value.status_code == 404 and not Path("never.csv").exists()
