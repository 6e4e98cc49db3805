"""Notifications: routed by severity, retried, dead-lettered, syslog in RFC 5424."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Severity
from hubsight.detect.db import DetectDB
from hubsight.detect.notify import Notifier, SyslogChannel, WebhookChannel, rfc5424
from hubsight.detect.settings import SyslogConfig, WebhookConfig

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _alert(
    severity: Severity = Severity.HIGH, *, revision: int = 1, notable: bool = False
) -> Alert:
    return Alert(
        id="a1",
        dedup_key="auth.x|u",
        rule_id="auth.x",
        title='Brute force against eve@contoso.com "quoted"',
        severity=severity,
        notable=notable,
        technique="T1110",
        runbook="Reset the password.",
        first_event_time=WHEN,
        last_event_time=WHEN,
        evidence=[],
        user="eve@contoso.com",
        revision=revision,
    )


def test_webhook_gets_new_alerts_of_its_severities_only(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(json.loads(request.content))
        return httpx.Response(204)

    channel = WebhookChannel(
        WebhookConfig(url="https://hooks.example/x?token=s3cret", severities=("High",)),
        transport=httpx.MockTransport(handler),
    )
    notifier = Notifier([channel], DetectDB.in_dir(tmp_path))
    report = notifier.send(
        [_alert(), _alert(Severity.LOW), _alert(revision=2), _alert(notable=True)]
    )
    assert report.sent == 1
    assert [r["rule_id"] for r in received] == ["auth.x"]
    assert received[0]["runbook"] == "Reset the password."


def test_webhook_retries_then_dead_letters_without_the_secret(tmp_path: Path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503)

    pauses: list[float] = []
    channel = WebhookChannel(
        WebhookConfig(url="https://hooks.example/x?token=s3cret", retries=2),
        transport=httpx.MockTransport(handler),
    )
    notifier = Notifier([channel], DetectDB.in_dir(tmp_path), sleep=pauses.append)
    report = notifier.send([_alert()])
    assert (report.sent, report.dead_letters, calls) == (0, 1, 3)
    assert pauses == [0.5, 1.0]
    (letter,) = notifier.dead_letters()
    assert letter["error"] == "HTTP 503"
    assert letter["channel"] == "webhook:hooks.example"
    assert "s3cret" not in json.dumps(letter)


def test_syslog_line_is_rfc5424_with_escaped_structured_data() -> None:
    line = rfc5424(_alert(Severity.CRITICAL), hostname="hub1")
    # authpriv (10) * 8 + crit (2)
    assert line.startswith("<82>1 ")
    assert re.match(r"<82>1 \S+Z hub1 hubsight - alert \[hubsight@32473 id=\"a1\" ", line)
    assert 'rule="auth.x"' in line
    assert line.endswith('Brute force against eve@contoso.com "quoted"')


def test_syslog_over_udp(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        port = server.getsockname()[1]
        channel = SyslogChannel(SyslogConfig(host="127.0.0.1", port=port, severities=("High",)))
        report = Notifier([channel], DetectDB.in_dir(tmp_path)).send([_alert()])
        data, _ = server.recvfrom(65535)
    assert report.sent == 1
    assert data.startswith(b"<83>1 ")
