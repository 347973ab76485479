"""The browser of the end-to-end tests: Debian's Chromium driven by Playwright."""

import shutil

import pytest

from tests.conftest import need
from tests.e2e.chromium import CHROMIUM, CHROMIUM_FLAGS


@pytest.fixture
def browser():
    need(
        shutil.which(CHROMIUM) is not None,
        f"Debian's Chromium is not at {CHROMIUM}: apt-get install chromium",
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "Playwright for Python is not installed (make test-deps)")
    with sync_playwright() as playwright:
        # Playwright starts it with a fresh, temporary --user-data-dir of its own.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()
