"""Helpers of the browser tests: the console under test, signing in, screenshots."""

from __future__ import annotations

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


def shot(page: Page, name: str) -> None:
    """Keep a screenshot of the page as a CI artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
