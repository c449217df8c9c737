"""Fixtures of the console's browser tests: Debian's Chromium driven by Playwright, axe-core,
and a page helper that checks accessibility and takes the screenshots of every page.

Playwright's own browser download cannot be reached, so the project installs `chromium` and
`fonts-noto-cjk` with apt-get (and axe-core from npm into .local/node) through
`deploy/local/browser.py` before the first browser starts.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "console" / "screenshots"
VIEWPORTS = {"1280x800": (1280, 800), "390x844": (390, 844)}
BLOCKING_IMPACTS = {"serious", "critical"}


def _browser_tools() -> Any:
    spec = importlib.util.spec_from_file_location(
        "permits_browser_tools", REPO / "deploy/local/browser.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


browser_tools = _browser_tools()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    browser_tools.ensure()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(
        executable_path=str(browser_tools.CHROMIUM), args=["--no-sandbox"]
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture(scope="session")
def console_url(system: Any) -> str:
    url: str = system.url("console")
    return url


class Pages:
    """Opens the console's pages in one browser context (one signed-in user)."""

    def __init__(self, context: BrowserContext, base: str) -> None:
        self.context = context
        self.base = base
        self.page: Page = context.new_page()

    def open(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def check(self, name: str) -> None:
        """No serious or critical axe violation, and screenshots at both sizes."""
        page = self.page
        page.add_script_tag(path=str(browser_tools.AXE_SCRIPT))
        result = page.evaluate("async () => await axe.run(document)")
        blocking = [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result["violations"]
            if v["impact"] in BLOCKING_IMPACTS
        ]
        assert not blocking, f"{name}: accessibility violations {blocking}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, (width, height) in VIEWPORTS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})


def new_pages(browser: Browser, base: str) -> Pages:
    """A fresh context: its own cookies; CSP bypassed only so axe can be injected."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="zh-CN", bypass_csp=True
    )
    return Pages(context, base)


def sign_in(pages: Pages, token: str) -> Page:
    page = pages.open("/signin")
    page.fill("#token", token)
    page.click("button[type=submit]")
    return page
