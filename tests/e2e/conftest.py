"""Fixtures of the end-to-end tests: one headless Chromium per module, a fresh context per test, and an API with
one worker on PostgreSQL + Redis for the modules that submit runs (`stack`, one per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from harness.browser import SCREENSHOTS, launch_chromium
from harness.stack import REDIS_URL, StackConfig, api_and_worker, postgres_database


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)  # fails, never skips, when Chromium is missing
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page whose uncaught script errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    with postgres_database() as url:
        config = StackConfig(home=tmp_path_factory.mktemp("e2e"), database_url=url, broker_url=REDIS_URL)
        with api_and_worker(config):
            yield config
