"""A running service with the console on a free TCP port, and Chromium driven by Playwright.

Playwright's own browser download does not work offline, so the tests launch the system Chromium
(``scripts/test-deps.sh`` installs it). Screenshots go to ``test-artifacts/`` for CI.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.ruleset import build_rule
from hubsight.parsing.event import Event, LogSet
from hubsight.store.catalog import Catalog
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth

from tests.browser.harness import ANALYST, ARTIFACTS, CHROMIUM, Console
from tests.support import FAST_HASH, serving, wait_until

# Playwright's default 5 s for an expectation failed tests on a loaded machine while the page was
# still answering; a wrong page still fails, only later.
EXPECT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run scripts/test-deps.sh (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page; a screenshot is kept when it ends.

    A script error or a Content-Security-Policy violation on any page fails the test.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield opened
    ARTIFACTS.mkdir(exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    context.close()
    assert problems == []


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def seed_alert(data_dir: Path) -> list[Event]:
    """One brute-force-that-succeeded alert in the detection database; its events."""
    rule = build_rule(BruteForceSuccess, {})
    engine = DetectionEngine(DetectDB.in_dir(data_dir), [rule], options=EngineOptions())
    example = next(e for e in BruteForceSuccess.examples() if e.fires)
    assert engine.process(example.events)
    engine.close()
    return list(example.events)


@pytest.fixture
def console(data_dir: Path) -> Iterator[Console]:
    """The service with an alert, an analyst account, and the console served over TCP."""
    evidence = seed_alert(data_dir)
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create(*ANALYST, "analyst")
    # The seeded events are dated months back: keep them past the default 90 days' retention.
    catalog = Catalog(data_dir)
    for log_set in LogSet:
        catalog.set_retention(log_set.value, 3650)
    with serving(data_dir) as service:
        service.store.write(evidence)
        app = create_app(service, auth=ConsoleAuth(users))
        app.state.detect_db = DetectDB.in_dir(data_dir)
        sock = _free_socket()
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, args=([sock],), daemon=True)
        thread.start()
        wait_until(lambda: server.started, 10, "the console to listen")
        try:
            yield Console(f"http://127.0.0.1:{port}", service, users)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
