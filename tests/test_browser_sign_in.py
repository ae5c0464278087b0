"""Panel sign-in and bookmarks in headless chromium against the real panel (`hedge app`).

With HEDGE_PANEL_PASSWORD set, every page shows only the sign-in form until the browser session signs
in; a wrong password is refused (and delays the next attempt); the right one opens the page the URL
names. The first request to a freshly started panel is a bookmark (/hedge_detail): it must open that
page inside the panel's one navigation (sidebar with health and kill switch), never Streamlit's raw
`pages/` file menu ("app", ..., "shared") that runs the page file without app.py.
Screenshots go to test-artifacts/ (tests/support/browser.py); with HEDGE_UPDATE_SCREENSHOTS=1 the sign-in form
is also written to tests/screenshots/sign_in.png (as tests/test_browser_e2e.py does for the pages).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pages._nav import PAGES
from tests.support.browser import ROOT, browser_page, panel_env, panel_process, screenshot, wait_drawn

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
PASSWORD = "test-panel-pass-1"


def _raw_menu(page) -> int:
    """How many entries of Streamlit's raw pages/ file menu are on screen."""
    return sum(page.get_by_role("link", name=n, exact=True).count() for n in ("app", "shared", "hedge detail"))


def _sign_in_form_only(page) -> None:
    page.get_by_role("heading", name="Sign in").first.wait_for(timeout=60_000)
    page.get_by_label("Password", exact=True).wait_for(timeout=30_000)
    wait_drawn(page)  # the run has ended: whatever else the page would draw is on screen for the checks below
    assert page.get_by_text("Kill switch").count() == 0
    for _path, title, _icon in PAGES:
        assert page.get_by_role("heading", name=title).count() == 0, title
        assert page.get_by_role("link", name=title, exact=True).count() == 0, title
    assert _raw_menu(page) == 0
    assert PASSWORD not in page.content()


def _submit(page, password: str) -> None:
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def _in_panel_navigation(page, title: str) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    page.get_by_text("Kill switch").first.wait_for(timeout=30_000)
    page.get_by_role("link", name="Overview", exact=True).first.wait_for(timeout=30_000)
    assert _raw_menu(page) == 0


def test_password_gates_every_page_and_a_bookmark_opens_after_sign_in(tmp_path) -> None:
    env = panel_env(tmp_path, demo_days=3, export=False)
    env["HEDGE_PANEL_PASSWORD"] = PASSWORD
    with panel_process(Path(env["HEDGE_DB"]), extra_env=env) as url, browser_page() as page:
        # the first request of the fresh server is a bookmark
        page.goto(f"{url}/hedge_detail")
        _sign_in_form_only(page)
        assert page.url.rstrip("/").endswith("/hedge_detail")
        screenshot(page, "sign_in_bookmark_hedge_detail")
        if os.environ.get("HEDGE_UPDATE_SCREENSHOTS") == "1":
            page.screenshot(path=str(ROOT / "tests" / "screenshots" / "sign_in.png"), full_page=False)

        _submit(page, "not-the-password")
        page.get_by_text("wrong password; next attempt in 1 s").first.wait_for(timeout=30_000)
        _sign_in_form_only(page)
        screenshot(page, "sign_in_wrong_password")

        time.sleep(1.5)  # the delay after one failure (attempts within it are refused: tests/test_panel_auth.py)
        _submit(page, PASSWORD)
        _in_panel_navigation(page, "Hedge detail")
        assert page.url.rstrip("/").endswith("/hedge_detail")
        assert page.get_by_role("button", name="Sign out").count() == 1
        screenshot(page, "sign_in_then_hedge_detail")

        # every page, opened directly in a new browser session, shows only the form
        for path, title, _icon in PAGES:
            page.goto(f"{url}/{Path(path).stem}")
            _sign_in_form_only(page)

        # sign out: back to the form
        page.goto(f"{url}/risk")
        _sign_in_form_only(page)
        _submit(page, PASSWORD)
        _in_panel_navigation(page, "Risk and LTV")
        page.get_by_role("button", name="Sign out").click()
        _sign_in_form_only(page)


def test_unprotected_loopback_bookmark_opens_in_the_panel_navigation(tmp_path) -> None:
    env = panel_env(tmp_path, demo_days=3, export=False)
    with panel_process(Path(env["HEDGE_DB"]), extra_env=env) as url, browser_page() as page:
        page.goto(f"{url}/hedge_detail")  # the first request after the (re)start
        _in_panel_navigation(page, "Hedge detail")
        assert page.url.rstrip("/").endswith("/hedge_detail")
        page.get_by_text("Unprotected").first.wait_for(timeout=30_000)
        assert page.get_by_role("heading", name="Sign in").count() == 0
        screenshot(page, "bookmark_hedge_detail_unprotected")
        page.goto(f"{url}/market_data")
        _in_panel_navigation(page, "Market data")
