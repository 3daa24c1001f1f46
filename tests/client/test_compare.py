"""Compare through the client: the JSON of GET /api/compare and the self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunelab import Client, PruneLabError, Run
from tests.client.conftest import TINY


@pytest.fixture(scope="module")
def pair(client: Client, trained: Run) -> tuple[Run, Run]:
    schedule = {"kind": "constant", "target_sparsity": 0.3, "frequency": 5}
    denser = client.wait(
        client.create_run({**TINY, "name": "client tiny 30%", "exports": ["keras"], "schedule": schedule})
    )
    assert denser.status == "succeeded", denser.error
    return trained, denser


def test_compare_returns_both_runs_and_what_differs(client: Client, pair: tuple[Run, Run]) -> None:
    first, second = pair
    compared = client.compare([first.id, second.id], keys=["measured_sparsity"], max_points=50)
    assert [run["id"] for run in compared["runs"]] == [first.id, second.id]
    differing = {difference["parameter"] for difference in compared["differences"]}
    assert "schedule.target_sparsity" in differing and "name" in differing
    assert set(compared["series"]) == {str(first.id), str(second.id)}
    assert set(compared["series"][str(first.id)]) == {"measured_sparsity"}
    assert client.compare_url([first.id, second.id]) == f"{client.url}/compare.html?runs={first.id},{second.id}"


def test_the_report_is_one_html_file(client: Client, pair: tuple[Run, Run], tmp_path: Path) -> None:
    first, second = pair
    report = client.write_report([first.id, second.id], tmp_path / "report.html", baseline=second.id)
    html = report.read_text()
    assert html.lower().lstrip().startswith("<!doctype html") and "client tiny 30%" in html
    assert len(html) > 1_000_000  # Plotly is inside: it opens without a network
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_comparing_a_missing_run_is_the_servers_404(client: Client, trained: Run, tmp_path: Path) -> None:
    with pytest.raises(PruneLabError) as missing:
        client.compare([trained.id, 987654])
    assert missing.value.status_code == 404 and "987654" in missing.value.message
    with pytest.raises(PruneLabError) as missing_report:
        client.write_report([trained.id, 987654], tmp_path / "report.html")
    assert missing_report.value.status_code == 404 and not list(tmp_path.iterdir())
