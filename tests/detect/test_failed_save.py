"""A save that fails loses nothing: its batch's alerts, evidence and state go with the next save.

The collector does not deliver a stored batch again when detection fails on it, so the engine
keeps what the batch did (alerts, window entries, baselines) until a save succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.alerts import Alert, AlertFilter
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.errors import StoreError

from tests.detect.test_engine import BATCH, Tenant, _batches, _created, _engine, _rules, _view


class FailingOnce(DetectDB):
    """A detection database whose ``fail_at``-th write transaction fails before its commit."""

    def __init__(self, path: Path, fail_at: int) -> None:
        super().__init__(path)
        self.fail_at = fail_at
        self.writes = 0

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The transaction, rolled back with a StoreError when it is the ``fail_at``-th."""
        with super().transaction() as conn:
            yield conn
            self.writes += 1
            if self.writes == self.fail_at:
                # Everything the save wrote is in the transaction: it is all rolled back.
                raise StoreError("detection database write failed: disk I/O error")


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return Tenant()


def _stored(engine: DetectionEngine) -> dict[str, Alert]:
    return {a.dedup_key: a for a in engine.alerts.find(AlertFilter(limit=100_000))}


def _ungrouped(engine: DetectionEngine) -> list[str]:
    """Alerts (not notables) in no investigation. Which investigation each is in may differ: an
    alert joins by the order alerts are saved in, and the failed batch's are saved with the
    next batch's."""
    rows = engine.db.rows(
        "SELECT id FROM alerts WHERE notable = 0 "
        "AND id NOT IN (SELECT alert_id FROM investigation_alerts)"
    )
    return [str(row["id"]) for row in rows]


def _run(path: Path, events: list[Any], fail_at: int | None) -> tuple[dict[str, Any], list[str]]:
    """Alerts stored after the first half, a restart, and the second half; the keys created."""
    half = (len(events) // BATCH // 2) * BATCH
    live: set[str] = set()
    first = (
        _engine(path)
        if fail_at is None
        else DetectionEngine(
            FailingOnce(path / "detect.sqlite3", fail_at),
            _rules(),
            options=EngineOptions(learning=timedelta(0)),
        )
    )
    created: list[str] = []
    for batch in _batches(events[:half]):
        try:
            created += _created(first, batch, live)
        except StoreError:
            assert isinstance(first.db, FailingOnce)
            assert first.db.writes == fail_at
    first.close()
    # The windows and baselines left on disk carry on after the restart.
    second = _engine(path)
    created += _created(second, events[half:], live)
    found = {"alerts": _view(_stored(second)), "ungrouped": _ungrouped(second)}
    second.close()
    return found, created


@pytest.mark.parametrize(
    "fail_at",
    [
        # A batch in the middle, whose alerts the next batches change again.
        3,
        # The last batch before the restart: only close() is left to save it.
        "last",
    ],
)
def test_a_failed_save_ends_with_the_same_alerts_evidence_and_state(
    tenant: Tenant, tmp_path: Path, fail_at: int | str
) -> None:
    events = tenant.events
    batches = len(events) // BATCH // 2
    at = batches if fail_at == "last" else int(fail_at)
    want, want_created = _run(tmp_path / "clean", events, None)
    got, got_created = _run(tmp_path / "failing", events, at)
    assert want["alerts"], "the tenant raises no alert: the test proves nothing"
    assert got["alerts"] == want["alerts"]
    assert got["ungrouped"] == want["ungrouped"] == []
    # No alert is created twice, none is lost (each notified once, as without the failure).
    assert sorted(got_created) == sorted(set(got_created))
    if fail_at == "last":
        # close() saves the failed batch's new alerts; no batch is left to return them.
        assert set(got_created) <= set(want_created)
    else:
        # The failed batch's new alerts are returned (to be notified) by the next batch.
        assert set(got_created) == set(want_created)
