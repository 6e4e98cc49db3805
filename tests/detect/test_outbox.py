"""Notifications due are recorded with the alerts that make them due (the outbox): a process
killed between the save and the send sends them at its next start, once; what was delivered is
never sent again. Against a real HTTP receiver.

The shipped unusual-flow rule (one-day lookback) alerts on a device-code sign-in at 0 h and
again at 25 h; one at 23 h, arriving late, withdraws the second alert.
"""

from __future__ import annotations

import json
import sqlite3
import tarfile
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from pydantic import SecretStr

from hubsight.detect.alerts import Alert
from hubsight.detect.db import SCHEMA_VERSION, DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.notify import Channel, Notifier, channel_for
from hubsight.detect.outbox import WITHDRAWN
from hubsight.detect.rules.auth_signals import FlowConfig, UnusualAuthFlow
from hubsight.detect.runtime import Detection
from hubsight.detect.targets import WebhookConfig
from hubsight.parsing.event import Event

from tests.detect.receivers import http_receiver
from tests.detect.test_notify_withdrawn import device_code_sign_ins
from tests.support import wait_until

FIXTURES = Path(__file__).parents[1] / "data/datadirs"


class _Killed(BaseException):
    """The process dying: nothing after it runs (no handler catches a BaseException)."""


@pytest.fixture
def deaths(monkeypatch: pytest.MonkeyPatch) -> list[type[BaseException]]:
    """What ended threads (the delivery thread dies of ``_Killed`` as the process would)."""
    died: list[type[BaseException]] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_type))
    return died


class _DiesSending:
    """A channel whose process is killed as it begins to send (after the alert was saved)."""

    def __init__(self, channel: Channel) -> None:
        self.name, self.severities = channel.name, channel.severities
        self.retries, self.per = channel.retries, channel.per

    def deliver(self, alert: Alert, *, withdrawn: str | None = None) -> None:
        raise _Killed


class _Bug:
    """A channel with a bug for one alert: it raises what no receiver's failure raises."""

    def __init__(self, channel: Channel, bad: str) -> None:
        self.name, self.severities = channel.name, channel.severities
        self.retries, self.per = channel.retries, channel.per
        self.channel, self.bad = channel, bad

    def deliver(self, alert: Alert, *, withdrawn: str | None = None) -> None:
        if alert.id == self.bad:
            raise KeyError("a bug in a channel")
        self.channel.deliver(alert, withdrawn=withdrawn)


def _detection(path: Path, channels: Sequence[Channel]) -> Detection:
    db = DetectDB.in_dir(path)
    engine = DetectionEngine(
        db,
        [UnusualAuthFlow(FlowConfig(lookback_days=1))],
        options=EngineOptions(learning=timedelta(0)),
    )
    return Detection(engine, Notifier(channels, db, sleep=lambda _s: None))


def _soar(url: str) -> Channel:
    return channel_for(
        WebhookConfig(name="soar", url=SecretStr(url), severities=("Medium",), retries=0)
    )


def _detection_reusing(live: Detection, channels: Sequence[Channel]) -> Detection:
    # The same engine and database, its notifier's channels replaced (as a refresh does).
    live.notifier = Notifier(channels, live.engine.db)
    return live


def _killed(detection: Detection, event: Event, deaths: list[type[BaseException]]) -> None:
    """``event`` detected and saved, then the process killed before its notification went."""
    detection.on_stored([event])
    # The collector's thread is done; the delivery thread dies as it begins to send.
    wait_until(lambda: deaths == [_Killed], 30, "the delivery thread killed as it sent")
    # Dead: nothing more is saved or sent.
    detection.engine.db.close()


def _due_in(detection: Detection) -> list[str]:
    return [r["alert_id"] for r in detection.engine.db.rows("SELECT alert_id FROM outbox")]


def _due(path: Path) -> list[tuple[str, str | None]]:
    db = DetectDB.in_dir(path)
    try:
        rows = db.rows("SELECT alert_id, withdrawn FROM outbox ORDER BY seq")
    finally:
        db.close()
    return [(r["alert_id"], r["withdrawn"]) for r in rows]


def test_a_kill_between_saving_and_sending_sends_at_the_next_start_once(
    tmp_path: Path, deaths: list[type[BaseException]]
) -> None:
    first, later, _ = device_code_sign_ins()
    with http_receiver() as (url, received):
        soar = _soar(url)
        before = _detection(tmp_path, [soar])
        (sent,) = before.on_stored([first])
        assert before.wait_delivered()
        _killed(_detection_reusing(before, [_DiesSending(soar)]), later, deaths)
        (alert_id, reason) = _due(tmp_path)[0]
        assert reason is None
        assert [body["id"] for _, body in received.requests] == [sent.id]

        after = _detection(tmp_path, [soar])
        assert after.start() is None
        # Sent by the delivery thread the start woke, before anything else was detected.
        assert after.wait_delivered()
        assert [body["id"] for _, body in received.requests] == [sent.id, alert_id]
        after.close()
        assert received.requests[1][1]["status"] == "open"
        assert _due(tmp_path) == []

        # Delivered: not sent again by the next start, nor after its batches.
        again = _detection(tmp_path, [soar])
        again.start()
        again.on_stored([msgspec.structs.replace(first, source_offset=9)])
        again.close()
    assert [body["id"] for _, body in received.requests] == [sent.id, alert_id]


def test_an_alert_withdrawn_before_its_due_delivery_is_sent_then_followed_up(
    tmp_path: Path, deaths: list[type[BaseException]]
) -> None:
    first, later, between = device_code_sign_ins()
    with http_receiver() as (url, received):
        soar = _soar(url)
        before = _detection(tmp_path, [soar])
        before.on_stored([first])
        assert before.wait_delivered()
        _killed(_detection_reusing(before, [_DiesSending(soar)]), later, deaths)
        (gone, _), *_ = _due(tmp_path)

        # The first batch after the restart withdraws it before anything was sent.
        after = _detection(tmp_path, [soar])
        assert after.on_stored([between]) == []
        assert after.engine.withdrawn == [gone]
        after.close()
    bodies = [body for _, body in received.requests]
    assert [(b["id"], b["status"]) for b in bodies[1:]] == [(gone, "open"), (gone, "withdrawn")]
    assert bodies[2]["reason"] == WITHDRAWN
    assert _due(tmp_path) == []


def test_a_due_alert_whose_delivery_fails_is_dead_lettered_and_not_followed_up(
    tmp_path: Path, deaths: list[type[BaseException]]
) -> None:
    first, later, between = device_code_sign_ins()
    with http_receiver(503) as (url, received):
        soar = _soar(url)
        before = _detection(tmp_path, [soar])
        before.on_stored([first])
        assert before.wait_delivered()
        _killed(_detection_reusing(before, [_DiesSending(soar)]), later, deaths)
        after = _detection(tmp_path, [soar])
        after.on_stored([between])
        assert after.wait_delivered()
        letters = after.notifier.dead_letters()
        after.close()
    # The first alert and the due one, each tried once (no retries); no follow-up.
    assert [body["status"] for _, body in received.requests] == ["open", "open"]
    assert [json.loads(letter["payload"])["status"] for letter in letters] == ["open", "open"]


def test_a_channel_failing_with_a_bug_dead_letters_that_alert_and_sends_the_rest(
    tmp_path: Path,
) -> None:
    first, later, _ = device_code_sign_ins()
    with http_receiver() as (url, received):
        soar = _soar(url)
        detection = _detection(tmp_path, [soar])
        (bad,) = [a.id for a in detection.engine.process([first]) if a.revision == 1]
        (good,) = [a.id for a in detection.engine.process([later]) if a.revision == 1]
        detection.notifier = Notifier([_Bug(soar, bad)], detection.engine.db)
        report = detection.deliver()
        letters = detection.notifier.dead_letters()
        detection.close()
    assert (report.sent, report.dead_letters) == (1, 1)
    assert [body["id"] for _, body in received.requests] == [good]
    assert [(letter["alert_id"], letter["error"]) for letter in letters] == [
        (bad, "KeyError: 'a bug in a channel'")
    ]
    assert _due(tmp_path) == []


def test_a_due_notification_for_a_target_removed_since_is_dropped(
    tmp_path: Path, deaths: list[type[BaseException]]
) -> None:
    first, _, _ = device_code_sign_ins()
    with http_receiver() as (url, received):
        _killed(_detection(tmp_path, [_DiesSending(_soar(url))]), first, deaths)
        assert len(_due(tmp_path)) == 1
        after = _detection(tmp_path, [])
        after.start()
        assert after.wait_delivered()
        assert _due_in(after) == []
        after.close()
        # Added again later: the old alert is not sent then either.
        again = _detection(tmp_path, [_soar(url)])
        again.start()
        assert again.wait_delivered()
        again.close()
    assert received.requests == []
    assert _due(tmp_path) == []


def test_a_detect_database_of_schema_3_migrates_and_follows_up_its_deliveries(
    tmp_path: Path,
) -> None:
    # Written by the schema-3 release's own code (scripts/make-upgrade-fixture.py): two
    # alerts, both delivered to "webhook:soar".
    with tarfile.open(FIXTURES / "detect-3.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    data_dir = tmp_path / "data"
    with sqlite3.connect(data_dir / "detect.sqlite3") as old:
        delivered = {row[0] for row in old.execute("SELECT alert_id FROM notified")}
    old.close()
    assert len(delivered) == 2
    _, _, between = device_code_sign_ins()
    with http_receiver() as (url, received):
        detection = _detection(data_dir, [_soar(url)])
        # Nothing due from a release that kept no outbox: nothing is sent again at start.
        detection.start()
        assert detection.wait_delivered()
        assert received.requests == []
        assert detection.on_stored([between]) == []
        (gone,) = detection.engine.withdrawn
        detection.close()
    assert [(body["id"], body["status"]) for _, body in received.requests] == [(gone, "withdrawn")]
    with sqlite3.connect(data_dir / "detect.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        # Followed up, its delivery is forgotten; the other's stays.
        left = {row[0] for row in db.execute("SELECT alert_id FROM notified")}
        assert left == delivered - {gone}
        assert len(left) == 1
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    db.close()
