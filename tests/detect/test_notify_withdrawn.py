"""Withdrawn alerts are followed up where they were notified, against real receivers.

The shipped unusual-flow rule (one-day lookback) alerts on a user's device-code sign-in at 0 h
and again at 25 h; a sign-in at 23 h, arriving late, shows the one at 25 h was not unusual, and
the engine withdraws that alert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from pydantic import SecretStr

from hubsight.detect.alerts import Alert, AlertStore
from hubsight.detect.base import Rule, Severity
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.notify import Channel, Notifier, channel_for, rfc5424
from hubsight.detect.outbox import WITHDRAWN, WITHDRAWN_KEPT
from hubsight.detect.rules.auth_baseline import NewCountry, NewCountryConfig
from hubsight.detect.rules.auth_signals import FlowConfig, UnusualAuthFlow
from hubsight.detect.rules.signals import signin
from hubsight.detect.runtime import Detection
from hubsight.detect.targets import SmtpConfig, SyslogConfig, Target, WebhookConfig
from hubsight.parsing.event import Event

from tests.detect.receivers import http_receiver, smtp_server, tcp_listener
from tests.support import PLANTED_PASSWORD, wait_until


def device_code_sign_ins() -> tuple[Event, Event, Event]:
    """Device-code sign-ins at 0 h and 25 h (each unusual), and the late one at 23 h."""
    # The rule's own firing example, moved in time: whatever field tells the rule the flow.
    (example,) = [e.events[0] for e in UnusualAuthFlow.examples() if e.fires][:1]
    first, later, between = (
        msgspec.structs.replace(
            example, timestamp=example.timestamp + timedelta(hours=hours), source_offset=offset
        )
        for offset, hours in enumerate((0, 25, 23))
    )
    return first, later, between


def _detection(
    path: Path,
    targets: Sequence[Target],
    *,
    rule: Rule[Any] | None = None,
    horizon: timedelta = timedelta(days=90),
    pauses: list[float] | None = None,
) -> Detection:
    db = DetectDB.in_dir(path)
    engine = DetectionEngine(
        db,
        [rule or UnusualAuthFlow(FlowConfig(lookback_days=1))],
        options=EngineOptions(learning=timedelta(0), baseline_horizon=horizon),
    )
    channels: list[Channel] = [channel_for(t) for t in targets]
    sleep = pauses.append if pauses is not None else _no_retry_expected
    return Detection(engine, Notifier(channels, db, sleep=sleep))


def _no_retry_expected(seconds: float) -> None:
    raise AssertionError(f"a delivery was retried (pause {seconds} s) where none should fail")


def _new(alerts: list[Alert]) -> Alert:
    (alert,) = [a for a in alerts if a.revision == 1]
    return alert


def _smtp(port: int) -> SmtpConfig:
    return SmtpConfig(
        name="pager-mail",
        host="127.0.0.1",
        port=port,
        sender="hubsight@contoso.com",
        recipients=("oncall@contoso.com",),
        severities=("Medium",),
    )


def test_a_withdrawn_alert_is_followed_up_once_on_each_channel_that_got_it(
    tmp_path: Path,
) -> None:
    first, later, between = device_code_sign_ins()
    with (
        http_receiver() as (soar_url, soar),
        http_receiver() as (pager_url, pager),
        tcp_listener() as (syslog_port, frames),
        smtp_server() as (smtp_port, box),
    ):
        targets: list[Target] = [
            WebhookConfig(name="soar", url=SecretStr(soar_url), severities=("Medium",)),
            # Skips Medium: it never got the alert, so it gets no follow-up either.
            WebhookConfig(name="pager", url=SecretStr(pager_url), severities=("High",)),
            SyslogConfig(
                host="127.0.0.1", port=syslog_port, protocol="tcp", severities=("Medium",)
            ),
            _smtp(smtp_port),
        ]
        detection = _detection(tmp_path, targets)
        stays = _new(detection.on_stored([first]))
        gone = _new(detection.on_stored([later]))
        detection.close()

        # Deliveries are remembered across a restart.
        detection = _detection(tmp_path, targets)
        assert detection.on_stored([between]) == []
        assert detection.engine.withdrawn == [gone.id]
        # The same late sign-in again (a replayed batch) tells nobody twice.
        detection.on_stored([between])
        detection.close()
        wait_until(lambda: len(frames) == 3, 5, "three syslog frames")

    assert [body["id"] for _, body in soar.requests] == [stays.id, gone.id, gone.id]
    original, follow_up = soar.requests[1][1], soar.requests[2][1]
    assert original["status"] == "open"
    assert follow_up == original | {"status": "withdrawn", "reason": WITHDRAWN}
    assert pager.requests == []

    messages = [frame.partition(b" ")[2].decode() for frame in frames]
    assert [f'id="{gone.id}"' in m for m in messages] == [False, True, True]
    assert " hubsight - alert [" in messages[1]
    assert " hubsight - withdrawn [" in messages[2]
    assert f'reason="{WITHDRAWN}"' in messages[2]
    assert messages[2].endswith(f"] Withdrawn: {gone.title}")

    # Unfolded: the long subject comes folded over two header lines.
    subjects = [mail["Subject"].replace("\r\n", "") for _, mail in box.mails]
    assert subjects == [
        f"[hubsight Medium] {stays.title}",
        f"[hubsight Medium] {gone.title}",
        f"Withdrawn: [hubsight Medium] {gone.title}",
    ]
    # Decoded: lines longer than a mail line come quoted-printable.
    body = box.mails[2][1].get_payload(decode=True)
    assert isinstance(body, bytes)
    mailed = json.loads(body)
    assert (mailed["id"], mailed["status"], mailed["reason"]) == (gone.id, "withdrawn", WITHDRAWN)


def test_an_alert_withdrawn_before_any_channel_got_it_is_not_followed_up(
    tmp_path: Path,
) -> None:
    first, later, between = device_code_sign_ins()
    with http_receiver() as (url, received):
        soar = WebhookConfig(name="soar", url=SecretStr(url), severities=("Medium",))
        detection = _detection(tmp_path, [])
        detection.on_stored([first, later])
        # The target is added after the alerts were raised, before the withdrawal.
        detection.notifier = Notifier([channel_for(soar)], detection.engine.db)
        detection.on_stored([between])
        withdrawn = detection.engine.withdrawn
        detection.close()
    assert len(withdrawn) == 1
    assert received.requests == []


def test_a_withdrawn_notable_is_not_followed_up(tmp_path: Path) -> None:
    # With a one-hour horizon NG at 0 and 70 are both new, until NG at 30 arrives.
    on_time = [
        signin(-10, offset=0),
        signin(0, country="NG", offset=1),
        signin(50, offset=2),
        signin(70, country="NG", offset=3),
    ]
    late = signin(30, country="NG", offset=4)
    with http_receiver() as (url, received):
        target = WebhookConfig(name="soar", url=SecretStr(url), severities=("Low",))
        rule = NewCountry(NewCountryConfig(dedup_minutes=30))
        detection = _detection(tmp_path, [target], rule=rule, horizon=timedelta(hours=1))
        raised = detection.on_stored(on_time)
        detection.on_stored([late])
        withdrawn = detection.engine.withdrawn_alerts
        detection.close()
    assert [a.notable for a in raised] == [True, True]
    assert [a.id for a in withdrawn] == [raised[1].id]
    assert received.requests == []


def test_a_dead_lettered_alert_gets_no_follow_up(tmp_path: Path) -> None:
    first, later, between = device_code_sign_ins()
    with http_receiver(204, 503, 204) as (url, received):
        soar = WebhookConfig(name="soar", url=SecretStr(url), severities=("Medium",), retries=0)
        detection = _detection(tmp_path, [soar])
        detection.on_stored([first])
        gone = _new(detection.on_stored([later]))
        detection.on_stored([between])
        assert detection.wait_delivered()
        letters = detection.notifier.dead_letters()
        detection.close()
    assert detection.engine.withdrawn == [gone.id]
    assert len(received.requests) == 2
    (letter,) = letters
    undelivered = json.loads(letter["payload"])
    assert (letter["alert_id"], undelivered["status"]) == (gone.id, "open")


def test_a_failed_follow_up_is_retried_then_dead_lettered_without_the_url(tmp_path: Path) -> None:
    first, later, between = device_code_sign_ins()
    with http_receiver(204, 204, 503) as (url, received):
        # Unnamed, so the dead letter names it by where it goes: never with the token.
        soar = WebhookConfig(
            url=SecretStr(f"{url}/hook?token={PLANTED_PASSWORD}"),
            severities=("Medium",),
            retries=1,
        )
        pauses: list[float] = []
        detection = _detection(tmp_path, [soar], pauses=pauses)
        detection.on_stored([first])
        gone = _new(detection.on_stored([later]))
        detection.on_stored([between])
        assert detection.wait_delivered()
        (letter,) = detection.notifier.dead_letters()
        detection.close()
    assert [body["status"] for _, body in received.requests] == [
        "open",
        "open",
        "withdrawn",
        "withdrawn",
    ]
    assert pauses == [0.5]
    assert (letter["channel"], letter["alert_id"], letter["error"]) == (
        f"webhook:{url}",
        gone.id,
        "HTTP 503",
    )
    body = json.loads(letter["payload"])
    assert (body["id"], body["status"], body["reason"]) == (gone.id, "withdrawn", WITHDRAWN)
    assert PLANTED_PASSWORD not in json.dumps(letter)


def test_a_triaged_alert_that_stays_is_still_reported_withdrawn(tmp_path: Path) -> None:
    first, later, between = device_code_sign_ins()
    with http_receiver() as (url, received):
        soar = WebhookConfig(name="soar", url=SecretStr(url), severities=("Medium",))
        detection = _detection(tmp_path, [soar])
        detection.on_stored([first])
        gone = _new(detection.on_stored([later]))
        AlertStore(detection.engine.db).update(gone.id, actor="ann", status="investigating")
        detection.on_stored([between])
        stays = AlertStore(detection.engine.db).get(gone.id)
        detection.close()
    assert stays.status == "investigating"
    (_, follow_up) = received.requests[-1]
    assert (follow_up["id"], follow_up["status"], follow_up["reason"]) == (
        gone.id,
        "withdrawn",
        WITHDRAWN_KEPT,
    )
    assert len(received.requests) == 3


def _alert() -> Alert:
    when = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return Alert(
        id="a-1",
        dedup_key="auth.x|u",
        rule_id="auth.x",
        title="Unusual flow",
        severity=Severity.MEDIUM,
        notable=False,
        technique="T1528",
        runbook="",
        first_event_time=when,
        last_event_time=when,
        evidence=[],
    )


def test_a_follow_up_is_sent_once_then_the_delivery_is_forgotten(tmp_path: Path) -> None:
    # As when the alert is raised again under its id and withdrawn again, unnotified this time.
    with http_receiver() as (url, received):
        soar = WebhookConfig(name="soar", url=SecretStr(url), severities=("Medium",))
        notifier = Notifier([channel_for(soar)], DetectDB.in_dir(tmp_path))
        reports = [
            notifier.send([_alert()]),
            notifier.send([], [_alert()]),
            notifier.send([], [_alert()]),
        ]
    assert [(r.sent, r.withdrawn, r.dead_letters) for r in reports] == [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 0),
    ]
    assert [body["status"] for _, body in received.requests] == ["open", "withdrawn"]


def test_a_withdrawn_syslog_line_escapes_its_reason() -> None:
    line = rfc5424(_alert(), hostname="hub1", withdrawn='kept "triaged"]')
    # authpriv (10) * 8 + warning (4): the severity of the alert it follows up.
    assert line.startswith("<84>1 ")
    assert ' hub1 hubsight - withdrawn [hubsight@32473 id="a-1" ' in line
    assert line.endswith(' reason="kept \\"triaged\\"\\]"] Withdrawn: Unusual flow')
