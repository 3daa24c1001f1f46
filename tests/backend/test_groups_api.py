"""Groups of runs over the API: statistics against the runs' stored final metrics, bands, comparisons, frontier."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from prunelab.server.models import RunStatus
from tests.backend.seed import SPEC, seeded_run

CONSTANT = {"kind": "constant", "target_sparsity": 0.75, "frequency": 7}
POLYNOMIAL = {"kind": "polynomial", "final_sparsity": 0.75, "frequency": 7}
ACCURACY = {"polynomial": [0.97, 0.975, 0.972], "constant": [0.961, 0.969, 0.958]}
SIZES = {"polynomial": [1000, 1010, 990], "constant": [1100, 1090, 1120]}


def _seed_grid(client: TestClient) -> dict[str, list[int]]:
    """Three seeds per schedule at 75% (test accuracy and zipped size known), one failed constant run."""
    ids: dict[str, list[int]] = {"polynomial": [], "constant": []}
    for kind, schedule in (("polynomial", POLYNOMIAL), ("constant", CONSTANT)):
        for seed in range(3):
            spec = {**SPEC, "seed": seed, "schedule": schedule}
            summary = {"test_accuracy": ACCURACY[kind][seed], "keras_zip_bytes": SIZES[kind][seed]}
            ids[kind].append(seeded_run(client, spec, steps=42, summary=summary))
    seeded_run(client, {**SPEC, "seed": 9, "schedule": CONSTANT}, steps=10, status=RunStatus.FAILED)
    return ids


def test_groups_match_the_runs_stored_final_metrics(client: TestClient) -> None:
    ids = _seed_grid(client)
    response = client.get(
        "/api/groups", params={"by": "schedule.kind,sparsity", "metrics": "test_accuracy,keras_zip_bytes,loss"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    labels = [group["label"] for group in body["groups"]]
    assert labels == ["schedule.kind=constant, sparsity=0.75", "schedule.kind=polynomial, sparsity=0.75"]
    constant, polynomial = body["groups"]
    assert polynomial["run_ids"] == ids["polynomial"] and constant["run_ids"] == ids["constant"]
    assert len(constant["failed_run_ids"]) == 1 and polynomial["failed_run_ids"] == []
    # The runs' own stored finals, read back one by one, against the group's figures.
    for group, kind in ((polynomial, "polynomial"), (constant, "constant")):
        finals = [client.get(f"/api/runs/{run_id}").json()["summary"]["test_accuracy"] for run_id in group["run_ids"]]
        accuracy = group["metrics"]["test_accuracy"]
        assert accuracy["n"] == 3
        assert accuracy["mean"] == pytest.approx(np.mean(finals), abs=1e-12)
        assert accuracy["std"] == pytest.approx(np.std(finals, ddof=1), abs=1e-12)
        assert (accuracy["min"], accuracy["max"]) == (min(finals), max(finals))
        assert group["metrics"]["keras_zip_bytes"]["mean"] == pytest.approx(np.mean(SIZES[kind]))
        # loss is no summary key: its latest logged value (2 / 42) is the final one
        assert group["metrics"]["loss"]["mean"] == pytest.approx(2.0 / 42)
    by_seed = client.get("/api/groups", params={"by": "seed", "filter": "kind:polynomial"}).json()
    assert [group["key"]["seed"] for group in by_seed["groups"]] == [0, 1, 2]


def test_comparison_is_welch_from_scipy_with_failed_runs_said(client: TestClient) -> None:
    _seed_grid(client)
    params = {
        "by": "schedule.kind",
        "a": "schedule.kind=polynomial",
        "b": "schedule.kind=constant",
        "metric": "test_accuracy",
    }
    body = client.get("/api/groups/compare", params=params).json()
    expected = stats.ttest_ind(ACCURACY["polynomial"], ACCURACY["constant"], equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert body["p_value"] == pytest.approx(expected.pvalue)
    assert (body["ci_low"], body["ci_high"]) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert (body["n_a"], body["n_b"], body["failed_b"]) == (3, 3, 1)
    assert body["sentence"].startswith("polynomial - constant: +0.97 pt [")
    assert "1 failed run in constant not counted" in body["sentence"]
    missing = client.get("/api/groups/compare", params={**params, "b": "schedule.kind=piecewise"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "b"


def test_band_of_runs_of_different_lengths_states_n_at_each_x(client: TestClient) -> None:
    long_run = seeded_run(client, {**SPEC, "seed": 0}, steps=42, summary={"test_accuracy": 0.9})
    short_run = seeded_run(client, {**SPEC, "seed": 1}, steps=21, summary={"test_accuracy": 0.8})
    response = client.get(
        "/api/groups/curves", params={"by": "model", "key": "loss", "x": "step", "band": "minmax", "points": 42}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    (group,) = body["groups"]
    assert group["run_ids"] == [long_run, short_run]
    grid, curve = body["grid"], group["band"]
    assert grid[0] == 1 and grid[-1] == 42
    for x, n, mean, lower, upper in zip(grid, curve["n"], curve["mean"], curve["lower"], curve["upper"], strict=True):
        if x <= 21:  # both runs stand here: loss 2/x in both, the band closes on it
            assert n == 2 and mean == pytest.approx(2.0 / x) and lower == pytest.approx(upper)
        else:  # the short run has ended: one run, no band
            assert n == 1 and mean == pytest.approx(2.0 / x) and lower is None
    # fraction of training: the short run is a 21-step run of a 42-step plan, so it ends at half
    fraction = client.get("/api/groups/curves", params={"by": "model", "key": "loss", "x": "fraction"}).json()
    halfway = np.searchsorted(fraction["grid"], 0.5, side="right")
    assert set(fraction["groups"][0]["band"]["n"][halfway:]) == {1}


def test_frontier_marks_the_pareto_groups_and_the_baseline(client: TestClient) -> None:
    _seed_grid(client)
    dense = seeded_run(client, {**SPEC, "name": "dense"}, summary={"test_accuracy": 0.99, "keras_zip_bytes": 4000})
    body = client.get(
        "/api/groups/frontier",
        params={"by": "schedule.kind", "filter": "not name:dense", "x": "size", "baseline": dense},
    ).json()
    points = {point["label"]: point for point in body["points"]}
    polynomial = points["schedule.kind=polynomial"]
    assert polynomial["pareto"] and not points["schedule.kind=constant"]["pareto"]
    assert polynomial["x"]["mean"] == pytest.approx(1000) and polynomial["y"]["std"] == pytest.approx(
        np.std(ACCURACY["polynomial"], ddof=1)
    )
    assert body["baseline"] == {"run_id": dense, "x": 4000, "y": 0.99}


def test_bad_group_requests_get_422_naming_the_field(client: TestClient) -> None:
    unknown = client.get("/api/groups", params={"by": "schedule.kind,shedule.kind"})
    assert unknown.status_code == 422
    detail = unknown.json()["detail"][0]
    assert detail["field"] == "by" and "'shedule.kind' is not a spec field" in detail["msg"]
    assert client.get("/api/groups").status_code == 422
    assert client.get("/api/groups", params={"by": "model", "metrics": "a b"}).json()["detail"][0]["field"] == "metrics"
    assert client.get("/api/groups", params={"by": "model", "filter": "accuracy >"}).status_code == 422
    bad_band = client.get("/api/groups/curves", params={"by": "model", "key": "loss", "band": "iqr"})
    assert bad_band.status_code == 422 and bad_band.json()["detail"][0]["field"] == "band"
    assert client.get("/api/groups/frontier", params={"by": "model", "baseline": 99999}).status_code == 404
