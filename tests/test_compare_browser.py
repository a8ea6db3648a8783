"""`zoo compare --html` and `zoo report` pages in a real headless Chromium: every picture decodes,
the console stays clean, and a screenshot is saved under the test's tmp_path.

Needs Debian's Chromium (`apt-get install -y chromium chromium-driver`) and playwright (the test
extra; it drives the system browser and never downloads one). Skipped with the reason where
either is missing, except under CI (CI set, as tox passes it on), where that fails the test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_compare_page import build_store, compare_html
from test_html_report import make_run_dir

from zoo.html_report import write_report

pytestmark = pytest.mark.browser

# As python.md on these machines says: no sandbox as root, and no background connections (the
# closed network refuses them, many at a time).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> Path | None:
    """The browser: ZOO_CHROMIUM where set, else Debian's /usr/bin/chromium or one on PATH."""
    named = os.environ.get("ZOO_CHROMIUM")
    candidates = [named] if named else ["/usr/bin/chromium", shutil.which("chromium")]
    return next((Path(c) for c in candidates if c and os.access(c, os.X_OK)), None)


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if chromium() is None:
        where = os.environ.get("ZOO_CHROMIUM") or "/usr/bin/chromium"
        return f"no Chromium at {where} (apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser():
    why = _unavailable()
    if why is not None:
        if os.environ.get("CI"):  # as conftest.py: under CI, absent is a fault
            pytest.fail(f"CI must run the browser tests: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium()), args=FLAGS)
        yield launched
        launched.close()


def look_at(browser, page_path: Path, screenshot: Path) -> dict:
    """Open the page from its file; return the decoded size of each image and what the console
    and the page said."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    said, failed = [], []
    page.on("console", lambda m: said.append((m.type, m.text)))
    page.on("pageerror", lambda e: said.append(("pageerror", str(e))))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(page_path.as_uri(), wait_until="load")
    widths = page.evaluate(
        "Promise.all([...document.images].map(i => i.decode().then(() => i.naturalWidth, () => 0)))"
    )
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return {
        "widths": widths,
        "errors": [(kind, text) for kind, text in said if kind in ("error", "pageerror")],
        "failed": failed,
    }


def test_the_compare_page_renders_in_chromium(browser, tmp_path):
    page_path = tmp_path / "compare.html"
    build_store(tmp_path)
    assert compare_html(tmp_path, page_path) == 0
    seen = look_at(browser, page_path, tmp_path / "compare.png")
    assert len(seen["widths"]) == 5 and all(w > 0 for w in seen["widths"]), seen["widths"]
    assert seen["errors"] == [] and seen["failed"] == []
    assert (tmp_path / "compare.png").stat().st_size > 10_000


def test_the_run_report_renders_in_chromium(browser, tmp_path):
    files = write_report(make_run_dir(tmp_path))
    seen = look_at(browser, files.html, tmp_path / "report.png")
    assert len(seen["widths"]) == 3 and all(w > 0 for w in seen["widths"]), seen["widths"]
    assert seen["errors"] == [] and seen["failed"] == []
