"""Helpers of the browser tests: the console under test, signing in, screenshots."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page

from hubsight.service import Service
from hubsight.store.users import UserStore

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
ADMIN = ("admin", "browser admin passphrase")
ANALYST = ("ana", "browser analyst passphrase")


@dataclass
class Console:
    """The console under test: its URL, service and accounts."""

    url: str
    service: Service
    users: UserStore


def sign_in(page: Page, console: Console, account: tuple[str, str]) -> None:
    """Sign in through the login form."""
    page.goto(f"{console.url}/login")
    page.fill('input[name="name"]', account[0])
    page.fill('input[name="password"]', account[1])
    page.click('button[type="submit"]')
    page.wait_for_url(f"{console.url}/")


def sign_out(page: Page) -> None:
    """Drop the session cookie with no console page open.

    A page left open notices the lost session on its next poll and goes to the login page
    itself, which aborts a navigation the test starts meanwhile (net::ERR_ABORTED).
    """
    page.goto("about:blank")
    page.context.clear_cookies()


def wait_for_chart(page: Page, selector: str, timeout_s: float = 10.0) -> None:
    """Wait until the ECharts instance of ``selector`` exists.

    Polled with ``evaluate`` rather than ``wait_for_function``: the console's CSP forbids
    eval, which wait_for_function's later polls use inside the page (it failed whenever the
    chart was not there at the first check).
    """
    deadline = time.monotonic() + timeout_s
    probe = f"!!document.querySelector({selector!r})?.chart"
    while not page.evaluate(probe):
        if time.monotonic() > deadline:
            raise AssertionError(f"no chart in {selector} after {timeout_s} s")
        page.wait_for_timeout(50)


def shot(page: Page, name: str) -> None:
    """Keep a screenshot of the page as a CI artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
