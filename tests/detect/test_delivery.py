"""Notifications are sent by a thread of their own: a receiver that takes its time holds up no
batch, and a shutdown finishes the delivery in flight and leaves the rest due. Against a real
HTTP receiver that holds each request until released.

The shipped unusual-flow rule (one-day lookback) alerts on a device-code sign-in at 0 h and
again at 25 h.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from hubsight.detect.alerts import Alert, AlertFilter, AlertStore
from hubsight.detect.db import DetectDB
from hubsight.detect.delivery import Deliverer
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.notify import Channel, Notifier, channel_for
from hubsight.detect.rules.auth_signals import FlowConfig, UnusualAuthFlow
from hubsight.detect.runtime import Detection
from hubsight.detect.targets import WebhookConfig
from hubsight.errors import StoreError
from hubsight.metrics import Metrics

from tests.detect.receivers import http_receiver
from tests.detect.test_notify_withdrawn import device_code_sign_ins
from tests.support import wait_until


def _detection(path: Path, channels: Sequence[Channel], *, grace_s: float = 10.0) -> Detection:
    db = DetectDB.in_dir(path)
    engine = DetectionEngine(
        db,
        [UnusualAuthFlow(FlowConfig(lookback_days=1))],
        options=EngineOptions(learning=timedelta(0)),
    )
    return Detection(engine, Notifier(channels, db), grace_s=grace_s)


def _soar(url: str, *, retries: int = 0) -> Channel:
    # Longer than any hold: the receiver's answer, not the client's timeout, ends a delivery.
    return channel_for(
        WebhookConfig(
            name="soar",
            url=SecretStr(url),
            severities=("Medium",),
            retries=retries,
            timeout_seconds=60,
        )
    )


def _new(alerts: list[Alert]) -> str:
    (alert,) = [a.id for a in alerts if a.revision == 1]
    return alert


def _column(path: Path, sql: str) -> list[str]:
    db = DetectDB.in_dir(path)
    try:
        return [str(row[0]) for row in db.rows(sql)]
    finally:
        db.close()


def _due(path: Path) -> list[str]:
    return _column(path, "SELECT alert_id FROM outbox ORDER BY seq")


def test_a_receiver_holding_a_notification_holds_up_no_batch(tmp_path: Path) -> None:
    first, later, _ = device_code_sign_ins()
    with http_receiver(hold=True) as (url, received):
        detection = _detection(tmp_path, [_soar(url)])
        held = _new(detection.on_stored([first]))
        wait_until(lambda: len(received.arrived) == 1, 30, "the first notification held")
        # The next batch is detected and saved while the receiver still holds the first.
        behind = _new(detection.on_stored([later]))
        stored = AlertStore(detection.engine.db).find(AlertFilter(limit=10))
        assert {alert.id for alert in stored} == {held, behind}
        assert _due(tmp_path) == [held, behind]
        assert received.requests == []
        received.release.set()
        assert detection.wait_delivered()
        detection.close()
    # In the order they were made.
    assert [body["id"] for _, body in received.requests] == [held, behind]
    assert _due(tmp_path) == []


def test_closing_while_a_delivery_is_in_flight_finishes_it_and_leaves_the_rest_due(
    tmp_path: Path,
) -> None:
    first, later, _ = device_code_sign_ins()
    with http_receiver(hold=True) as (url, received):
        detection = _detection(tmp_path, [_soar(url)], grace_s=0)
        held = _new(detection.on_stored([first]))
        wait_until(lambda: len(received.arrived) == 1, 30, "the first notification held")
        behind = _new(detection.on_stored([later]))
        closing = threading.Thread(target=detection.close)
        closing.start()
        wait_until(lambda: detection.notifier.stopping, 30, "the shutdown's grace over")
        received.release.set()
        closing.join(60)
        assert not closing.is_alive()
        # Finished, not abandoned: recorded as delivered, so the next start does not send it.
        assert [body["id"] for _, body in received.requests] == [held]
        assert _column(tmp_path, "SELECT alert_id FROM notified") == [held]
        assert _due(tmp_path) == [behind]

        after = _detection(tmp_path, [_soar(url)])
        after.start()
        assert after.wait_delivered()
        after.close()
    assert [body["id"] for _, body in received.requests] == [held, behind]
    assert _column(tmp_path, "SELECT count(*) FROM dead_letters") == ["0"]


def test_a_shutdown_cuts_the_pause_between_retries_short_and_leaves_it_due(
    tmp_path: Path,
) -> None:
    first, _, _ = device_code_sign_ins()
    with http_receiver(503) as (url, received):
        # Ten retries pause 0.5 s doubling, over eight minutes in all: unless cut short.
        detection = _detection(tmp_path, [_soar(url, retries=10)], grace_s=0)
        failing = _new(detection.on_stored([first]))
        wait_until(lambda: len(received.requests) >= 1, 30, "the first try")
        detection.close()
    assert len(received.requests) < 11
    # Not a dead letter: it was not given all its tries; the next start tries it afresh.
    assert _due(tmp_path) == [failing]
    assert _column(tmp_path, "SELECT count(*) FROM dead_letters") == ["0"]


def test_a_target_removed_while_its_receiver_holds_gets_nothing_more(tmp_path: Path) -> None:
    first, later, _ = device_code_sign_ins()
    with http_receiver(hold=True) as (url, received):
        detection = _detection(tmp_path, [_soar(url)])
        held = _new(detection.on_stored([first]))
        wait_until(lambda: len(received.arrived) == 1, 30, "the first notification held")
        detection.on_stored([later])
        # As a settings refresh after the target's removal does.
        detection.notifier = Notifier([], detection.engine.db)
        received.release.set()
        assert detection.wait_delivered()
        detection.close()
    assert [body["id"] for _, body in received.requests] == [held]
    assert _due(tmp_path) == []


class _LocksTheDatabase:
    """A channel whose delivery is followed by another process taking the database's write
    lock: the delivery cannot be recorded."""

    def __init__(self, channel: Channel, path: Path) -> None:
        self.name, self.severities = channel.name, channel.severities
        self.retries, self.per = channel.retries, channel.per
        self.channel, self.path = channel, path
        self.holder: sqlite3.Connection | None = None

    def deliver(self, alert: Alert, *, withdrawn: str | None = None) -> None:
        self.channel.deliver(alert, withdrawn=withdrawn)
        # Let go by the test's thread.
        self.holder = sqlite3.connect(
            self.path / "detect.sqlite3", isolation_level=None, check_same_thread=False
        )
        self.holder.execute("BEGIN EXCLUSIVE")


def test_a_delivery_that_cannot_be_recorded_stays_due_and_goes_at_the_next_wake(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, _, _ = device_code_sign_ins()
    with http_receiver() as (url, received):
        locking = _LocksTheDatabase(_soar(url), tmp_path)
        detection = _detection(tmp_path, [locking])
        with caplog.at_level(logging.ERROR, "hubsight.detect.delivery"):
            alert = _new(detection.on_stored([first]))
            # The pass fails (after SQLite's 5 s wait for the lock) and is logged.
            assert detection.wait_delivered()
        assert locking.holder is not None
        locking.holder.execute("ROLLBACK")
        locking.holder.close()
        assert "notifications due could not be sent" in caplog.text
        assert _due(tmp_path) == [alert]
        # The thread lives on: the next wake (a batch, a tick, a start) sends it again, as a
        # crash before that record would have.
        detection.notifier = Notifier([_soar(url)], detection.engine.db)
        detection.start()
        assert detection.wait_delivered()
        detection.close()
    assert [body["id"] for _, body in received.requests] == [alert, alert]
    assert _due(tmp_path) == []


def test_a_delivery_failing_pass_after_pass_logs_its_traceback_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = DetectDB(tmp_path / "detect.sqlite3")
    failures = iter([sqlite3.OperationalError("database is locked")] * 3)

    def notifier() -> Notifier:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return Notifier([], db)

    deliverer = Deliverer(db, notifier)
    with caplog.at_level(logging.INFO, "hubsight.detect.delivery"):
        for _ in range(4):
            deliverer.wake()
            assert deliverer.wait(10)
    deliverer.close(1)
    db.close()
    records = [(r.levelno, r.exc_info is not None, r.getMessage()) for r in caplog.records]
    assert [(level, traced) for level, traced, _ in records] == [
        (logging.ERROR, True),
        (logging.WARNING, False),
        (logging.WARNING, False),
        (logging.INFO, False),
    ]
    assert "database is locked" in records[1][2]
    assert "sent again" in records[3][2]


def test_the_notifications_due_are_a_metric_while_a_receiver_holds_them(tmp_path: Path) -> None:
    first, later, _ = device_code_sign_ins()
    metrics = Metrics()
    with http_receiver(hold=True) as (url, received):
        detection = _detection(tmp_path, [_soar(url)])
        metrics.watch_notifications(detection.notifications_due)
        detection.on_stored([first])
        wait_until(lambda: len(received.arrived) == 1, 30, "the first notification held")
        detection.on_stored([later])
        assert b"hubsight_notifications_due 2.0" in metrics.render()
        received.release.set()
        assert detection.wait_delivered()
        assert b"hubsight_notifications_due 0.0" in metrics.render()
        detection.close()


def test_a_scrape_answers_without_the_notifications_due_when_they_cannot_be_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def unreadable() -> int:
        raise StoreError("detection database read failed: database is locked")

    metrics = Metrics()
    metrics.watch_notifications(unreadable)
    with caplog.at_level(logging.WARNING, "hubsight.metrics"):
        text = metrics.render()
    assert b"hubsight_notifications_due" not in text
    assert b"hubsight_alerts" in text
    assert "database is locked" in caplog.text
