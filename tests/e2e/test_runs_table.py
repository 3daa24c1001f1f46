"""The runs table in headless Chromium against a real API on SQLite: the server filters, reports mistakes, pages.

130 seeded runs (more than the table's 50-run page): typing a filter shows exactly the runs it matches,
a malformed filter shows the server's message (with its column) under the box, and "Load more" walks
the pages until every run is on screen once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from harness.browser import screenshot as shot
from harness.seed_runs import SeededRun, insert_runs
from harness.stack import StackConfig, migrate, sqlite_stack, start_api
from prunelab.server.settings import get_settings

pytestmark = pytest.mark.integration

RUNS = 130


@pytest.fixture(scope="module")
def seeded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackConfig, list[SeededRun]]]:
    home: Path = tmp_path_factory.mktemp("e2e-runs-table")
    config = sqlite_stack(home)
    config.extra["PRUNELAB_REAPER_INTERVAL_S"] = "0"  # the seeded `running` runs have no worker to keep them
    migrate(config)
    with pytest.MonkeyPatch.context() as patch:  # this process writes the runs straight into the stack's database
        patch.setenv("PRUNELAB_DATABASE_URL", config.database_url)
        patch.setenv("PRUNELAB_HOME", str(home))
        get_settings.cache_clear()
        runs = insert_runs(RUNS, seed=11)
    get_settings.cache_clear()
    api = start_api(config, home / "logs")
    try:
        yield config, runs
    finally:
        api.stop()


def shown_ids(page: Page) -> list[int]:
    return [int(value) for value in page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")]


def test_filter_errors_and_pages_in_the_browser(page: Page, seeded_stack: tuple[StackConfig, list[SeededRun]]) -> None:
    config, runs = seeded_stack
    page.goto(f"{config.base_url}/index.html")
    expect(page.locator("#runs tbody tr")).to_have_count(50)
    expect(page.locator("#message")).to_have_text(f"50 of {RUNS} runs shown.")

    # Page past the first page: newest first, each run once, then no more button.
    page.get_by_role("button", name="Load more").click()
    expect(page.locator("#runs tbody tr")).to_have_count(100)
    page.get_by_role("button", name="Load more").click()
    expect(page.locator("#runs tbody tr")).to_have_count(RUNS)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    newest_first = sorted(runs, key=lambda run: (run.created_at, run.id), reverse=True)
    assert shown_ids(page) == [run.id for run in newest_first]
    shot(page, "runs-table-all-pages")

    # The filter, evaluated by the server: exactly the matching runs.
    matching = [
        run
        for run in newest_first
        if run.kind == "polynomial" and "sweep" in run.tags and (run.latest.get("accuracy") or 0) > 0.98
    ]
    assert matching, "the seed gives the filter something to find"
    page.get_by_label("Filter").fill("accuracy > 0.98 kind:polynomial tag:sweep")
    expect(page.locator("#message")).to_have_text(f"{len(matching)} of {len(matching)} matching runs shown.")
    assert shown_ids(page) == [run.id for run in matching]
    expect(page.locator("#filter-error")).to_have_text("")

    # A mistake: the server's message, with its column, under the box; the rows stay as they were.
    page.get_by_label("Filter").fill("accuracy > 0.98 and (tag:sweep")
    expect(page.locator("#filter-error")).to_have_text("Filter: column 31: found the end of the filter, expected ')'")
    expect(page.get_by_label("Filter")).to_have_attribute("aria-invalid", "true")
    assert shown_ids(page) == [run.id for run in matching]
    shot(page, "runs-table-filter-error")
    page.get_by_label("Filter").fill("status:sucess")
    expect(page.locator("#filter-error")).to_contain_text("column 8: unknown status 'sucess'")

    # Fixed: the error goes, and a sort by a column asks the server too (test accuracy, blanks last).
    page.get_by_label("Filter").fill("status:succeeded")
    expect(page.locator("#filter-error")).to_have_text("")
    page.get_by_role("button", name="test accuracy").click()
    succeeded = [run for run in runs if run.status == "succeeded"]

    def accuracy(run: SeededRun) -> float | None:
        summary = (run.summary or {}).get("test_accuracy")
        return summary if summary is not None else run.latest.get("test_accuracy")

    ranked = sorted((r for r in succeeded if accuracy(r) is not None), key=lambda r: (accuracy(r), r.id), reverse=True)
    ranked += sorted((r for r in succeeded if accuracy(r) is None), key=lambda r: r.id, reverse=True)
    expect(page.locator("#runs th[aria-sort='descending']")).to_have_text("test accuracy")
    expect(page.locator("#runs tbody tr").first).to_have_attribute("data-run", str(ranked[0].id))
    assert shown_ids(page) == [run.id for run in ranked[:50]]
