"""Headless Chromium for browser tests: Debian's package, driven by Playwright (which cannot download browsers here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import Browser, Playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"


def chromium_path() -> str:
    """The system Chromium; a missing browser fails the test (`make browser` installs it), it is never skipped."""
    path = os.environ.get("PRUNELAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("no chromium on PATH: run `make browser` (Debian's chromium package)")
    return path


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
