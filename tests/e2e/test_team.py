"""A team's PruneLab in headless Chromium: sign in, submit, compare, download, sign out and be refused.

Real processes throughout: the API and a Celery worker on PostgreSQL and Redis, users made with
the `prunelab users` command. Screenshots go to test-output/screenshots/team-*.png.
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.browser import screenshot
from harness.stack import REDIS_URL, REPO, StackConfig, migrate, postgres_database, prunelab, start_api, start_worker

pytestmark = pytest.mark.integration

RUN_TIMEOUT_MS = 240_000
PASSWORDS = {"ana": "ana's long passphrase", "bob": "bob's long passphrase"}
# digits, batch 64: 21 steps per epoch; pruning every 7 steps reaches each target at the last step.
RUNS = [
    ("team constant 50%", "constant", "target_sparsity", "0.5"),
    ("team poly 70%", "polynomial", "final_sparsity", "0.7"),
]


def cli(config: StackConfig, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(prunelab(*args), env=config.env(), cwd=REPO, input=stdin, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    home = tmp_path_factory.mktemp("team")
    with postgres_database() as url:
        config = StackConfig(home=home, database_url=url, broker_url=REDIS_URL)
        migrate(config)
        for name, password in PASSWORDS.items():
            cli(config, "users", "add", name, "--password-stdin", stdin=password)
        api = start_api(config, home / "logs")
        worker = start_worker(config, home / "logs")
        try:
            yield config
        finally:
            worker.stop()
            api.stop()


def shot(page: Page, name: str) -> Path:
    return screenshot(page, f"team-{name}")


def submit(page: Page, base: str, name: str, kind: str, field: str, value: str) -> int:
    page.goto(f"{base}/new.html")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Batch Size").fill("64")
    page.get_by_label("Schedule kind").select_option(kind)
    page.get_by_label("Frequency").fill("7")
    page.locator(f'[name="schedule.{field}"]').fill(value)
    expect(page.locator("#preview-facts")).to_contain_text("21 steps (21 per epoch)")
    page.get_by_role("button", name="Submit run").click()
    page.wait_for_url(re.compile(r"/run\.html\?id=\d+$"))
    return int(page.url.rsplit("=", 1)[1])


def test_a_team_member_signs_in_works_and_signs_out(stack: StackConfig, page: Page, tmp_path: Path) -> None:
    base = stack.base_url
    assert httpx.get(f"{base}/api/runs").status_code == 401  # users exist: nothing is open any more
    bob_token = cli(stack, "tokens", "create", "bob", "--label", "e2e").strip()
    bobs_run = httpx.post(
        f"{base}/api/runs",
        headers={"Authorization": f"Bearer {bob_token}"},
        json={
            "name": "bob's run",
            "dataset": "digits",
            "epochs": 1,
            "batch_size": 64,
            "exports": ["keras"],
            "schedule": {"kind": "constant", "target_sparsity": 0.3, "frequency": 7},
        },
    ).json()
    assert bobs_run["owner"] == "bob"

    # Any page sends a visitor who is not signed in to the sign-in page, and back afterwards.
    page.goto(f"{base}/index.html")
    page.wait_for_url(re.compile(r"/login\.html\?next=%2Findex\.html$"))
    expect(page.locator("#status")).to_have_text("Sign in to see that page.")
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#error")).to_have_text("wrong user name or password")
    shot(page, "01-sign-in-refused")
    page.get_by_label("Password").fill(PASSWORDS["ana"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/index\.html$"))
    expect(page.locator("#account")).to_contain_text("Signed in as ana")
    cookie = next(c for c in page.context.cookies() if c["name"] == "prunelab_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain http on loopback
    assert page.evaluate("document.cookie") == ""  # out of reach of scripts

    # Submit through the generated form (it reads /openapi.json with the cookie); watch it live (SSE).
    run_ids = [submit(page, base, *run) for run in RUNS]
    for run_id in run_ids:
        page.goto(f"{base}/run.html?id={run_id}")
        expect(page.locator("#facts .badge")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#facts")).to_contain_text("ana")
    shot(page, "02-run-page-signed-in")

    # The runs table: everyone's runs with their owner; ana's own filter; no buttons on bob's run.
    page.goto(f"{base}/index.html")
    expect(page.locator("#runs tbody tr")).to_have_count(3)
    bobs_row = page.locator(f'[data-run="{bobs_run["id"]}"]')
    expect(bobs_row.locator('[data-col="owner"]')).to_have_text("bob")
    expect(bobs_row.get_by_role("button")).to_have_count(0)
    assert bobs_row.locator("td.tags input").get_attribute("readonly") is not None
    shot(page, "03-runs-table-everyones-runs")
    page.locator(".table-wrap", has=page.locator("#runs")).evaluate("(wrap) => { wrap.scrollLeft = wrap.scrollWidth; }")
    shot(page, "03-runs-table-actions-only-on-own-runs")  # tags, note and buttons: bob's row is read-only
    page.get_by_label("Filter").fill("owner:ana")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    page.get_by_label(f"tags of run {run_ids[0]}").fill("mine")
    page.get_by_label(f"tags of run {run_ids[0]}").press("Enter")
    page.wait_for_function(f"document.querySelector('[data-run=\"{run_ids[0]}\"] td.tags input').title === 'saved'")
    for run_id in run_ids:
        page.get_by_label(f"select run {run_id}", exact=False).check()
    shot(page, "04-runs-table-owner-filter")
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(rf"/compare\.html\?runs={run_ids[0]},{run_ids[1]}"))
    page.wait_for_function("document.getElementById('chart-sparsity')?.data?.length >= 4")
    shot(page, "05-compare")

    # Download the stripped model: the link carries no token, the cookie does the work.
    page.goto(f"{base}/run.html?id={run_ids[1]}")
    with page.expect_download() as download_info:
        page.locator("#downloads a[data-format='keras']").click()
    model_path = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(model_path)
    assert model_path.name.startswith(f"prunelab-run{run_ids[1]}-") and zipfile.is_zipfile(model_path)

    # Sign out: the session ends on the server, so even a copy of the cookie is refused.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login\.html\?signed_out=1$"))
    expect(page.locator("#status")).to_have_text("You have signed out.")
    shot(page, "06-signed-out")
    assert page.request.get(f"{base}/api/runs").status == 401
    stolen = httpx.get(f"{base}/api/runs", cookies={"prunelab_session": cookie["value"]})
    assert stolen.status_code == 401
    page.goto(f"{base}/run.html?id={run_ids[1]}")
    page.wait_for_url(re.compile(r"/login\.html\?next="))
    expect(page.locator("#status")).to_have_text("Sign in to see that page.")
    shot(page, "07-refused-page-after-sign-out")
    refused = page.goto(f"{base}/api/runs/{run_ids[1]}/model?format=keras")
    assert refused is not None and refused.status == 401
    expect(page.locator("body")).to_contain_text("sign in, or send an API token")
    shot(page, "08-refused-api-after-sign-out")
