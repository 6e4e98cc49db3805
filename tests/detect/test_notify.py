"""Notifications against real receivers: SMTP (plain, STARTTLS, SMTPS, AUTH), HTTP, syslog.

Routed by severity, retried, dead-lettered; a test notification reports the real delivery
result, and a failure comes with a hint.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Severity
from hubsight.detect.db import DetectDB
from hubsight.detect.notify import Notifier, channel_for, rfc5424, send_test
from hubsight.detect.targets import SmtpConfig, SyslogConfig, WebhookConfig, parse_target
from hubsight.errors import ConfigError

from tests.detect.receivers import (
    SmtpMode,
    Tls,
    http_receiver,
    make_tls,
    smtp_server,
    tcp_listener,
)
from tests.support import PLANTED_PASSWORD, wait_until

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _alert(
    severity: Severity = Severity.HIGH, *, revision: int = 1, notable: bool = False
) -> Alert:
    return Alert(
        id=f"a-{severity.value}",
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


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A test CA and a server certificate for 127.0.0.1."""
    return make_tls(tmp_path_factory.mktemp("tls"))


def _smtp(port: int, **extra: object) -> SmtpConfig:
    return SmtpConfig.model_validate(
        {
            "name": "soc-mail",
            "host": "127.0.0.1",
            "port": port,
            "sender": "hubsight@contoso.com",
            "recipients": ["soc@contoso.com", "oncall@contoso.com"],
            "severities": ["Critical", "High"],
        }
        | extra
    )


def test_smtp_mails_only_new_alerts_of_its_severities(tmp_path: Path) -> None:
    with smtp_server() as (port, box):
        notifier = Notifier.for_targets([_smtp(port)], DetectDB.in_dir(tmp_path))
        report = notifier.send(
            [
                _alert(Severity.CRITICAL),
                _alert(Severity.LOW),
                _alert(Severity.MEDIUM),
                _alert(revision=2),
                _alert(notable=True),
            ]
        )
    assert (report.sent, report.dead_letters) == (1, 0)
    ((rcpts, mail),) = box.mails
    assert rcpts == ["soc@contoso.com", "oncall@contoso.com"]
    assert mail["Subject"] == '[hubsight Critical] Brute force against eve@contoso.com "quoted"'
    assert mail["From"] == "hubsight@contoso.com"
    payload = mail.get_payload()
    assert isinstance(payload, str)
    body = json.loads(payload)
    assert (body["rule_id"], body["runbook"]) == ("auth.x", "Reset the password.")


def test_smtp_starttls_with_login(tls: Tls) -> None:
    users = {"hubsight": PLANTED_PASSWORD}
    with smtp_server("starttls", tls=tls, users=users) as (port, box):
        target = _smtp(
            port,
            starttls=True,
            username="hubsight",
            password=PLANTED_PASSWORD,
            ca_file=str(tls.ca_file),
        )
        result = send_test(target)
    assert result.ok, result
    assert box.logins == ["hubsight"]
    ((_, mail),) = box.mails
    assert mail["Subject"] == "[hubsight Critical] hubsight test notification to soc-mail"


def test_smtps_with_password_from_the_environment(
    tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HS_SMTP_PW", PLANTED_PASSWORD)
    with smtp_server("smtps", tls=tls, users={"hubsight": PLANTED_PASSWORD}) as (port, box):
        target = _smtp(
            port,
            smtps=True,
            username="hubsight",
            password_env="HS_SMTP_PW",
            ca_file=str(tls.ca_file),
        )
        result = send_test(target)
    assert result.ok, result
    assert box.logins == ["hubsight"]
    assert len(box.mails) == 1


def test_smtp_wrong_password_is_a_clear_error_and_a_dead_letter(tls: Tls, tmp_path: Path) -> None:
    with smtp_server("starttls", tls=tls, users={"hubsight": "right"}) as (port, box):
        target = _smtp(
            port,
            starttls=True,
            username="hubsight",
            password=PLANTED_PASSWORD,
            ca_file=str(tls.ca_file),
            retries=1,
        )
        result = send_test(target)
        pauses: list[float] = []
        notifier = Notifier([channel_for(target)], DetectDB.in_dir(tmp_path), sleep=pauses.append)
        report = notifier.send([_alert()])
    assert not result.ok
    assert result.error.startswith("SMTP authentication failed: 535")
    assert "user name or password" in result.hint
    assert (report.dead_letters, pauses) == (1, [0.5])
    (letter,) = notifier.dead_letters()
    assert letter["channel"] == "smtp:soc-mail"
    assert letter["error"] == result.error
    assert box.mails == []
    assert PLANTED_PASSWORD not in json.dumps(letter) + result.error + result.hint


@pytest.mark.parametrize(
    ("mode", "extra", "error", "hint"),
    [
        # The server offers AUTH only after STARTTLS, which the target does not use.
        ("starttls", {"username": "hubsight", "password": "x"}, "SMTP", "STARTTLS or SMTPS"),
        # Without the private CA, the server's certificate is not trusted.
        ("starttls", {"starttls": True}, "not trusted", "ca_file"),
        # SMTPS (implicit TLS) against a server that speaks plain SMTP first.
        ("plain", {"smtps": True}, "TLS failed", "465"),
        # A user without a password anywhere.
        ("plain", {"username": "u", "password_env": "HS_UNSET"}, "no SMTP password", "HS_UNSET"),
        # A CA file that is not there.
        ("starttls", {"starttls": True, "ca_file": "/nonexistent/ca.pem"}, "CA file", "PEM"),
    ],
    ids=["auth-needs-tls", "untrusted-certificate", "smtps-on-plain-port", "no-password",
         "missing-ca-file"],
)  # fmt: skip
def test_smtp_failures_say_what_to_do(
    tls: Tls, mode: SmtpMode, extra: dict[str, object], error: str, hint: str
) -> None:
    users = {"hubsight": "x"} if mode == "starttls" else None
    with smtp_server(mode, tls=tls, users=users) as (port, box):
        result = send_test(_smtp(port, **extra))
    assert not result.ok
    assert error in result.error
    assert hint in result.hint
    assert box.mails == []


def test_smtp_connection_refused_names_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = send_test(_smtp(port))
    assert not result.ok
    assert result.error.startswith("connection refused")
    assert "nothing listens there" in result.hint


def test_webhook_posts_json_with_its_auth_header(tmp_path: Path) -> None:
    with http_receiver() as (url, received):
        target = WebhookConfig(
            name="soar",
            url=SecretStr(f"{url}/hook?token=s3cret"),
            auth_header=SecretStr(f"Bearer {PLANTED_PASSWORD}"),
            severities=("High",),
        )
        notifier = Notifier.for_targets([target], DetectDB.in_dir(tmp_path))
        report = notifier.send(
            [_alert(), _alert(Severity.LOW), _alert(revision=2), _alert(notable=True)]
        )
    assert report.sent == 1
    ((headers, body),) = received.requests
    assert headers["authorization"] == f"Bearer {PLANTED_PASSWORD}"
    assert headers["content-type"] == "application/json"
    assert (body["rule_id"], body["severity"]) == ("auth.x", "High")


def test_webhook_retries_then_dead_letters_without_the_url(tmp_path: Path) -> None:
    with http_receiver(503, 503, 503) as (url, received):
        target = WebhookConfig(url=SecretStr(f"{url}/x?token=s3cret"), retries=2)
        pauses: list[float] = []
        notifier = Notifier([channel_for(target)], DetectDB.in_dir(tmp_path), sleep=pauses.append)
        report = notifier.send([_alert()])
        test = send_test(target)
    assert (report.sent, report.dead_letters, len(received.requests)) == (0, 1, 4)
    assert pauses == [0.5, 1.0]
    (letter,) = notifier.dead_letters()
    assert letter["error"] == "HTTP 503"
    assert letter["channel"] == f"webhook:{url}"
    assert "s3cret" not in json.dumps(letter)
    assert (test.ok, test.error) == (False, "HTTP 503")


def test_webhook_refusing_the_credentials_hints_at_the_header() -> None:
    with http_receiver(401) as (url, _):
        result = send_test(WebhookConfig(url=SecretStr(url), auth_header=SecretStr("Bearer x")))
    assert (result.ok, result.error) == (False, "HTTP 401")
    assert "auth header" in result.hint


def test_syslog_line_is_rfc5424_with_escaped_structured_data() -> None:
    line = rfc5424(_alert(Severity.CRITICAL), hostname="hub1")
    # authpriv (10) * 8 + crit (2)
    assert re.match(r"<82>1 \S+Z hub1 hubsight - alert \[hubsight@32473 id=\"a-Critical\" ", line)
    assert 'rule="auth.x"' in line
    assert line.endswith('Brute force against eve@contoso.com "quoted"')


def test_syslog_over_udp(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        port = server.getsockname()[1]
        target = SyslogConfig(host="127.0.0.1", port=port, severities=("High",))
        report = Notifier.for_targets([target], DetectDB.in_dir(tmp_path)).send(
            [_alert(Severity.LOW), _alert()]
        )
        data, _ = server.recvfrom(65535)
    assert report.sent == 1
    assert data.startswith(b"<83>1 ")


def test_syslog_over_tcp_uses_octet_counting(tmp_path: Path) -> None:
    with tcp_listener() as (port, got):
        target = SyslogConfig(host="127.0.0.1", port=port, protocol="tcp", severities=("Low",))
        report = Notifier.for_targets([target], DetectDB.in_dir(tmp_path)).send(
            [_alert(Severity.LOW), _alert()]
        )
        wait_until(lambda: bool(got), 5, "the syslog frame")
    assert report.sent == 1
    (frame,) = got
    length, _, message = frame.partition(b" ")
    assert int(length) == len(message)
    assert message.startswith(b"<85>1 ")


def test_a_disabled_target_gets_nothing(tmp_path: Path) -> None:
    with http_receiver() as (url, received):
        target = WebhookConfig(url=SecretStr(url), enabled=False)
        report = Notifier.for_targets([target], DetectDB.in_dir(tmp_path)).send([_alert()])
    assert (report.sent, received.requests) == (0, [])


def test_an_https_webhook_on_a_plain_http_port_says_tls_failed() -> None:
    with http_receiver() as (url, received):
        result = send_test(WebhookConfig(url=SecretStr(url.replace("http://", "https://"))))
    assert not result.ok
    assert result.error.startswith("TLS failed")
    assert "https:// webhook needs a TLS server" in result.hint
    assert received.requests == []


def test_a_target_per_investigation_gets_only_alerts_opening_one(tmp_path: Path) -> None:
    with http_receiver() as (every_url, every), http_receiver() as (cases_url, cases):
        per_alert = WebhookConfig(name="every", url=SecretStr(every_url))
        per_case = WebhookConfig(name="cases", url=SecretStr(cases_url), per="investigation")
        notifier = Notifier.for_targets([per_alert, per_case], DetectDB.in_dir(tmp_path))
        opening, joining = _alert(), _alert(Severity.CRITICAL)
        report = notifier.send([opening, joining], opened={opening.id: "inv-1"})
    assert report.sent == 3
    assert sorted(body["id"] for _, body in every.requests) == sorted([opening.id, joining.id])
    assert [body["id"] for _, body in cases.requests] == [opening.id]


@pytest.mark.parametrize("kind", [[], {}, "pager", None])
def test_a_target_without_a_known_kind_is_refused_with_the_kinds(kind: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target({"kind": kind, "name": "x"})
    assert caught.value.message == "a notification target needs a kind"
    assert "webhook" in (caught.value.hint or "")
