"""Notifications of new alerts: webhook (JSON), syslog (RFC 5424), email (SMTP), per severity.

The collector hands ``Notifier.send`` what ``DetectionEngine.process`` returned. Only new alerts
(revision 1) are sent, notables never (they do not alert alone). Each channel is tried
``retries + 1`` times with a doubling pause; what still fails is kept in the ``dead_letters``
table with the error, so nothing is lost silently.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Severity
from hubsight.detect.db import DetectDB
from hubsight.detect.settings import NotifyConfig, SmtpConfig, SyslogConfig, WebhookConfig

_FIRST_PAUSE = 0.5
# RFC 5424 severities: crit, err, warning, notice, informational.
_SYSLOG_SEVERITY = {
    Severity.CRITICAL: 2,
    Severity.HIGH: 3,
    Severity.MEDIUM: 4,
    Severity.LOW: 5,
    Severity.INFO: 6,
}
_AUTHPRIV = 10
# The private enterprise number RFC 5424 reserves for examples and documentation.
_SD_ID = "hubsight@32473"


class Channel(Protocol):
    """One destination for alerts."""

    name: str
    severities: tuple[str, ...]
    retries: int

    def deliver(self, alert: Alert) -> None:
        """Send one alert; raise on failure."""
        ...


def payload(alert: Alert) -> dict[str, Any]:
    """The JSON document a webhook receives."""
    return {
        **alert.summary(),
        "technique": alert.technique,
        "runbook": alert.runbook,
        "context": alert.context,
    }


@dataclass(slots=True)
class WebhookChannel:
    """POSTs the alert as JSON."""

    config: WebhookConfig
    transport: httpx.BaseTransport | None = None
    name: str = field(init=False)
    severities: tuple[str, ...] = field(init=False)
    retries: int = field(init=False)

    def __post_init__(self) -> None:
        # The URL may carry a token: name the channel by its host only.
        self.name = f"webhook:{httpx.URL(self.config.url).host}"
        self.severities = self.config.severities
        self.retries = self.config.retries

    def deliver(self, alert: Alert) -> None:
        """POST and require a 2xx answer."""
        with httpx.Client(transport=self.transport, timeout=self.config.timeout_seconds) as client:
            response = client.post(self.config.url, json=payload(alert))
            response.raise_for_status()


@dataclass(slots=True)
class SyslogChannel:
    """Sends an RFC 5424 message over UDP, or over TCP with octet-counting framing."""

    config: SyslogConfig
    name: str = field(init=False)
    severities: tuple[str, ...] = field(init=False)
    retries: int = 2

    def __post_init__(self) -> None:
        self.name = f"syslog:{self.config.host}:{self.config.port}"
        self.severities = self.config.severities

    def deliver(self, alert: Alert) -> None:
        """Send one message."""
        message = rfc5424(alert, hostname=socket.gethostname()).encode()
        address = (self.config.host, self.config.port)
        if self.config.protocol == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, address)
            return
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(f"{len(message)} ".encode() + message)


def rfc5424(alert: Alert, *, hostname: str) -> str:
    """The alert as one RFC 5424 syslog line with a structured-data element."""
    pri = _AUTHPRIV * 8 + _SYSLOG_SEVERITY[alert.severity]
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    params = {
        "id": alert.id,
        "rule": alert.rule_id,
        "severity": alert.severity.value,
        "user": alert.user or "",
        "ip": alert.source_ip or "",
        "first": alert.first_event_time.isoformat(),
    }
    sd = " ".join(f'{k}="{_sd_escape(v)}"' for k, v in params.items())
    return f"<{pri}>1 {stamp} {hostname or '-'} hubsight - alert [{_SD_ID} {sd}] {alert.title}"


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


@dataclass(slots=True)
class SmtpChannel:
    """Mails the alert to the configured recipients."""

    config: SmtpConfig
    name: str = field(init=False)
    severities: tuple[str, ...] = field(init=False)
    retries: int = 2

    def __post_init__(self) -> None:
        self.name = f"smtp:{self.config.host}:{self.config.port}"
        self.severities = self.config.severities

    def deliver(self, alert: Alert) -> None:
        """Send one mail."""
        mail = EmailMessage()
        mail["Subject"] = f"[hubsight {alert.severity.value}] {alert.title}"
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(self.config.recipients)
        mail.set_content(json.dumps(payload(alert), indent=2, default=str))
        with smtplib.SMTP(self.config.host, self.config.port, timeout=10) as smtp:
            if self.config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.config.username:
                password = os.environ.get(self.config.password_env or "", "")
                smtp.login(self.config.username, password)
            smtp.send_message(mail)


@dataclass(slots=True)
class NotifyReport:
    """What a ``send`` did."""

    sent: int = 0
    dead_letters: int = 0


class Notifier:
    """Routes new alerts to the channels configured for their severity."""

    def __init__(
        self,
        channels: Sequence[Channel],
        db: DetectDB,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.channels = list(channels)
        self.db = db
        self._sleep = sleep

    @classmethod
    def from_config(cls, config: NotifyConfig, db: DetectDB) -> Notifier:
        """The channels of ``detect.toml``'s ``[notify]`` section."""
        channels: list[Channel] = [WebhookChannel(c) for c in config.webhooks]
        channels += [SyslogChannel(c) for c in config.syslog]
        channels += [SmtpChannel(c) for c in config.smtp]
        return cls(channels, db)

    def send(self, alerts: Sequence[Alert]) -> NotifyReport:
        """Send every new, non-notable alert to each channel that takes its severity."""
        report = NotifyReport()
        for alert in alerts:
            if alert.revision != 1 or alert.notable:
                continue
            for channel in self.channels:
                if alert.severity.value not in channel.severities:
                    continue
                error = self._try(channel, alert)
                if error is None:
                    report.sent += 1
                else:
                    report.dead_letters += 1
                    body = json.dumps(payload(alert), default=str)
                    self.db.execute(
                        "INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?)",
                        (time.time(), channel.name, alert.id, body, error),
                    )
        return report

    def _try(self, channel: Channel, alert: Alert) -> str | None:
        pause = _FIRST_PAUSE
        error = ""
        for attempt in range(channel.retries + 1):
            if attempt:
                self._sleep(pause)
                pause *= 2
            try:
                channel.deliver(alert)
                return None
            except httpx.HTTPStatusError as exc:
                # Not str(exc): it repeats the URL, which may carry a token.
                error = f"HTTP {exc.response.status_code}"
            except (OSError, httpx.HTTPError, smtplib.SMTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
        return error

    def dead_letters(self) -> list[dict[str, Any]]:
        """Notifications that could not be delivered, oldest first."""
        rows = self.db.rows("SELECT * FROM dead_letters ORDER BY at")
        return [dict(row) for row in rows]
