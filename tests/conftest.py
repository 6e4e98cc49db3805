"""Shared fixtures: a real tansu broker over TCP, fresh topics, data directories.

After each test its captured stdout, stderr and log records are searched for the planted
secrets (``support.PLANTED``): a secret that leaks anywhere a test can see fails that test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hubsight.devbroker import LocalBroker

from support import PLANTED, create_topic


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    captured = "\n".join(content for _name, content in report.sections)
    if report.passed and any(secret in captured for secret in PLANTED):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: a planted secret appeared in captured output or logs"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A tansu broker without authentication, shared by the session (topics are per test)."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with LocalBroker(log_path=log) as running:
        yield running


@pytest.fixture(scope="session")
def auth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A tansu broker that requires SASL (it offers SCRAM only)."""
    log = tmp_path_factory.mktemp("auth-broker") / "tansu.log"
    with LocalBroker(authentication=True, log_path=log) as running:
        yield running


@pytest.fixture
def topic(broker: LocalBroker) -> str:
    """A fresh 4-partition topic on the shared broker."""
    return create_topic(broker.bootstrap)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory."""
    path = tmp_path / "data"
    path.mkdir()
    return path
