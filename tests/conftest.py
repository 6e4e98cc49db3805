"""Shared fixtures: a real tansu broker over TCP, fresh topics, data directories.

After each test its captured stdout, stderr and log records are searched for the planted
secrets (``support.PLANTED``): a secret that leaks anywhere a test can see fails that test.

With ``-n N`` (pytest-xdist, as ``make test`` runs) workers are handed whole test files, the
browser tests as one unit, the longest-running kinds first (see ``FileScheduling``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from pluggy import Result
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling

from hubsight.devbroker import LocalBroker

from tests.support import PLANTED, create_topic

BROWSER_TESTS = "tests/browser/"
# Files holding tests of these kinds run longest: they are queued first, so that no long file
# starts last while the other worker has nothing left to do.
LONG_FIRST = ("browser", "integration", "slow")


class FileScheduling(LoadScopeScheduling):
    """Hands each worker whole test files, and all the browser tests as one unit.

    A file's module-scoped fixtures (stores, simulated tenants) are then built once, not once per
    worker, and the browser tests share one Chromium instead of competing with each other.
    """

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return BROWSER_TESTS if path.startswith(BROWSER_TESTS) else path


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> FileScheduling:
    # Keep the queue in collection order (pytest_collection_modifyitems puts long kinds first)
    # rather than xdist's largest-file-first, which would queue a file of one long test last.
    config.option.loadscopereorder = False
    return FileScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding long-running kinds of test first; otherwise the order they were collected
    in. A file moves whole, so that its module-scoped fixtures are built once."""

    def rank(item: pytest.Item) -> int:
        for index, kind in enumerate(LONG_FIRST):
            if item.get_closest_marker(kind):
                return index
        return len(LONG_FIRST)

    ranks: dict[Path, int] = {}
    for item in items:
        ranks[item.path] = min(ranks.get(item.path, len(LONG_FIRST)), rank(item))
    items.sort(key=lambda item: ranks[item.path])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
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
