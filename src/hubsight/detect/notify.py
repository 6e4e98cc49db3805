"""Notifications of new alerts: webhook (JSON), syslog (RFC 5424), email (SMTP), per severity.

``Notifier.send`` takes what ``DetectionEngine.process`` returned. Only new alerts
(revision 1) are sent, notables never (they do not alert alone). Each channel is tried
``retries + 1`` times with a doubling pause; what still fails is kept in the ``dead_letters``
table with the error, so nothing is lost silently. ``send_test`` delivers one made-up alert
once and explains a failure with a hint (``explain``); targets are described in ``targets``.

Withdrawn alerts (a late event showed them untrue: ``DetectionEngine.withdrawn_alerts``) get a
follow-up on each channel that received them, as recorded in the ``notified`` table: the webhook
document with ``"status": "withdrawn"`` and a ``reason``, a syslog message with MSGID
``withdrawn``, a mail whose subject starts with "Withdrawn:". Channels whose severities skipped
the alert, or whose delivery ended as a dead letter, get none; nor does a target removed or
disabled since. An alert someone had triaged stays in hubsight when withdrawn, yet its receivers
are told all the same, since the detection no longer stands; the reason then says it was kept.
A follow-up is retried and dead-lettered like an alert, and sent at most once.

What is due is first recorded in the ``outbox`` table (``outbox``: by the engine, in the
transaction that saves the alerts), then sent by ``deliver`` in the order recorded, on the
delivery thread of ``hubsight run`` (``delivery``); each row goes in the transaction that
records its delivery or dead letter, so nothing due is lost to a crash, and nothing delivered
is sent again.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from hubsight import __version__
from hubsight.detect import outbox
from hubsight.detect.alerts import Alert
from hubsight.detect.base import Severity
from hubsight.detect.db import DetectDB
from hubsight.detect.targets import SmtpConfig, SyslogConfig, Target, WebhookConfig
from hubsight.errors import ConfigError, HubsightError

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
    # "alert": every new alert; "investigation": only the alert that opens an investigation.
    per: str

    def deliver(self, alert: Alert, *, withdrawn: str | None = None) -> None:
        """Send one alert, or with ``withdrawn`` (why) the news that it was; raise on failure."""
        ...


def payload(alert: Alert, *, withdrawn: str | None = None) -> dict[str, Any]:
    """The JSON document a webhook receives; a follow-up's says withdrawn, and why."""
    document = {
        **alert.summary(),
        "technique": alert.technique,
        "runbook": alert.runbook,
        "context": alert.context,
    }
    if withdrawn is not None:
        # In place of the triage status: withdrawn is what a receiver has to act on.
        document |= {"status": "withdrawn", "reason": withdrawn}
    return document


def _label(target: Target) -> str:
    # Named targets are named by name; the others by where they go (never a full URL).
    return f"{target.kind}:{target.name or target.where()}"


@dataclass(slots=True)
class _Routed:
    """What every channel takes from its target: its label, severities, retries and ``per``."""

    name: str = field(init=False)
    severities: tuple[str, ...] = field(init=False)
    retries: int = field(init=False)
    per: str = field(init=False)

    def route(self, target: Target) -> None:
        """Take the routing settings of ``target``."""
        self.name = _label(target)
        self.severities = target.severities
        self.per = target.per
        self.retries = target.retries


@dataclass(slots=True)
class WebhookChannel(_Routed):
    """POSTs the alert as JSON, with the configured Authorization header."""

    config: WebhookConfig
    transport: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        self.route(self.config)

    def deliver(self, alert: Alert, *, withdrawn: str | None = None) -> None:
        """POST and require a 2xx answer."""
        headers = {"User-Agent": f"hubsight/{__version__}"}
        if self.config.auth_header is not None:
            headers["Authorization"] = self.config.auth_header.get_secret_value()
        with httpx.Client(transport=self.transport, timeout=self.config.timeout_seconds) as client:
            response = client.post(
                self.config.url.get_secret_value(),
                json=payload(alert, withdrawn=withdrawn),
                headers=headers,
            )
            response.raise_for_status()


@dataclass(slots=True)
class SyslogChannel(_Routed):
    """Sends an RFC 5424 message over UDP, or over TCP with octet-counting framing."""

    config: SyslogConfig

    def __post_init__(self) -> None:
        self.route(self.config)

    def deliver(self, alert: Alert, *, withdrawn: str | None = None) -> None:
        """Send one message."""
        message = rfc5424(alert, hostname=socket.gethostname(), withdrawn=withdrawn).encode()
        address = (self.config.host, self.config.port)
        if self.config.protocol == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, address)
            return
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(f"{len(message)} ".encode() + message)


def rfc5424(alert: Alert, *, hostname: str, withdrawn: str | None = None) -> str:
    """The alert as one RFC 5424 syslog line with a structured-data element.

    With ``withdrawn`` (why), the line says the alert was withdrawn: MSGID ``withdrawn``, a
    ``reason`` parameter and "Withdrawn:" before the title.
    """
    # A follow-up keeps the alert's severity, so a SIEM routing by severity files it beside it.
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
    msgid, title = "alert", alert.title
    if withdrawn is not None:
        params["reason"] = withdrawn
        msgid, title = "withdrawn", f"Withdrawn: {title}"
    sd = " ".join(f'{k}="{_sd_escape(v)}"' for k, v in params.items())
    return f"<{pri}>1 {stamp} {hostname or '-'} hubsight - {msgid} [{_SD_ID} {sd}] {title}"


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


@dataclass(slots=True)
class SmtpChannel(_Routed):
    """Mails the alert to the configured recipients."""

    config: SmtpConfig

    def __post_init__(self) -> None:
        self.route(self.config)

    def _password(self) -> str:
        if self.config.password is not None:
            return self.config.password.get_secret_value()
        variable = self.config.password_env
        password = os.environ.get(variable) if variable else None
        if not password:
            raise ConfigError(
                f"no SMTP password for user {self.config.username!r}",
                hint=f"set it in Settings, or export {variable} to hubsight run"
                if variable
                else "set it in Settings (or password_env in detect.toml)",
            )
        return password

    def deliver(self, alert: Alert, *, withdrawn: str | None = None) -> None:
        """Send one mail."""
        subject = f"[hubsight {alert.severity.value}] {alert.title}"
        mail = EmailMessage()
        mail["Subject"] = subject if withdrawn is None else f"Withdrawn: {subject}"
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(self.config.recipients)
        mail.set_content(json.dumps(payload(alert, withdrawn=withdrawn), indent=2, default=str))
        config = self.config
        context = _tls_context(config.ca_file)
        smtp = (
            smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_seconds, context=context
            )
            if config.smtps
            else smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        )
        with smtp:
            if config.starttls:
                smtp.starttls(context=context)
            if config.username:
                smtp.login(config.username, self._password())
            smtp.send_message(mail)


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"the CA file {ca_file} cannot be used: {exc}",
            hint="give the path of a PEM file with the relay's CA, readable by hubsight run",
        ) from None


ChannelFactory = Callable[[Any, httpx.BaseTransport | None], Channel]

# One line per target kind (``targets.KINDS``): the channel that delivers to it. Only webhooks
# use an HTTP transport (tests hand in a MockTransport).
CHANNELS: dict[str, ChannelFactory] = {
    "webhook": WebhookChannel,
    "syslog": lambda config, _transport: SyslogChannel(config),
    "smtp": lambda config, _transport: SmtpChannel(config),
}


def channel_for(target: Target, transport: httpx.BaseTransport | None = None) -> Channel:
    """The channel that delivers to ``target``."""
    return CHANNELS[target.kind](target, transport)


@dataclass(slots=True)
class NotifyReport:
    """What a ``send`` did: alerts delivered, follow-ups of withdrawn ones, dead letters kept."""

    sent: int = 0
    withdrawn: int = 0
    dead_letters: int = 0
    # The channel of each dead letter, for the failure metrics.
    failed: list[str] = field(default_factory=list)
    # Whether ``Notifier.stop`` ended it with notifications still due.
    stopped: bool = False


class Notifier:
    """Routes new alerts to the channels configured for their severity."""

    def __init__(
        self,
        channels: Sequence[Channel],
        db: DetectDB,
        *,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.channels = list(channels)
        self.db = db
        self._stopping = threading.Event()
        # The pause between tries; ``stop`` cuts the default one short.
        self._sleep = sleep or self._stopping.wait

    def stop(self) -> None:
        """End ``deliver`` after the attempt in flight; what is left stays due.

        A notification whose attempt failed is left due rather than retried or dead-lettered:
        the next ``deliver`` (this process's, with the settings that replaced these, or the
        next start's) tries it afresh.
        """
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether ``stop`` was called."""
        return self._stopping.is_set()

    @classmethod
    def for_targets(cls, targets: Sequence[Target], db: DetectDB) -> Notifier:
        """A notifier with one channel per enabled target."""
        return cls([channel_for(t) for t in targets if t.enabled], db)

    def send(
        self,
        alerts: Sequence[Alert],
        withdrawn: Sequence[Alert] = (),
        opened: Collection[str] = (),
    ) -> NotifyReport:
        """Record the notifications ``alerts`` and ``withdrawn`` make due (``outbox.queue``), then
        deliver everything due.

        A channel set ``per = "investigation"`` gets only the alerts in ``opened``: those that
        opened an investigation (``DetectionEngine.opened_investigations``)."""
        self.queue(alerts, withdrawn, opened)
        return self.deliver()

    def queue(
        self,
        alerts: Sequence[Alert],
        withdrawn: Sequence[Alert] = (),
        opened: Collection[str] = (),
    ) -> int:
        """Record what ``alerts`` and ``withdrawn`` make due for this notifier's channels."""
        with self.db.transaction() as conn:
            return outbox.queue(conn, self.channels, alerts, withdrawn, opened)

    def deliver(self) -> NotifyReport:
        """Send every notification due, oldest first: each alert to its channel, each follow-up
        to a channel that received the alert (one that dead-lettered it gets none).

        A notification for a channel no longer configured (target removed or disabled) is
        dropped. Callers deliver from one thread at a time (``Detection`` does), lest two send
        the same row. After ``stop``, it ends after the attempt in flight."""
        report = NotifyReport()
        channels = {channel.name: channel for channel in self.channels}
        for due in outbox.pending(self.db):
            if self.stopping:
                report.stopped = True
                break
            self._deliver(channels.get(due.channel), due, report)
        return report

    def _deliver(self, channel: Channel | None, due: outbox.Due, report: NotifyReport) -> None:
        alert, withdrawn = due.alert, due.withdrawn
        received = withdrawn is None or bool(
            self.db.rows(
                "SELECT 1 FROM notified WHERE alert_id = ? AND channel = ?",
                (alert.id, due.channel),
            )
        )
        error = self._try(channel, alert, withdrawn) if channel and received else None
        if error is _LEFT:
            # Stopped between tries: due still, tried afresh by the next deliver.
            report.stopped = True
            return
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (due.seq,))
            if withdrawn is not None:
                # Followed up (or never to be): an alert raised again under this id is followed
                # up only where it goes the next time.
                conn.execute(
                    "DELETE FROM notified WHERE alert_id = ? AND channel = ?",
                    (alert.id, due.channel),
                )
            if channel is None or not received:
                return
            if error is not None:
                body = json.dumps(payload(alert, withdrawn=withdrawn), default=str)
                conn.execute(
                    "INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?)",
                    (time.time(), channel.name, alert.id, body, error),
                )
            elif withdrawn is None:
                conn.execute(
                    "INSERT OR REPLACE INTO notified VALUES (?, ?, ?)",
                    (alert.id, channel.name, time.time()),
                )
        if error is not None:
            report.dead_letters += 1
            report.failed.append(due.channel)
        elif withdrawn is None:
            report.sent += 1
        else:
            report.withdrawn += 1

    def _try(self, channel: Channel, alert: Alert, withdrawn: str | None) -> str | None:
        pause = _FIRST_PAUSE
        error = ""
        for attempt in range(channel.retries + 1):
            if attempt:
                self._sleep(pause)
                pause *= 2
                if self.stopping:
                    return _LEFT
            try:
                channel.deliver(alert, withdrawn=withdrawn)
                return None
            except _DELIVERY_ERRORS as exc:
                error = explain(exc)[0]
            except Exception as exc:  # noqa: BLE001 - a bug here must not hold back the rest due
                # Not a failure of the receiver, so not tried again: kept as a dead letter.
                return f"{type(exc).__name__}: {exc}"
        return error

    def dead_letters(self) -> list[dict[str, Any]]:
        """Notifications that could not be delivered, oldest first."""
        rows = self.db.rows("SELECT * FROM dead_letters ORDER BY at")
        return [dict(row) for row in rows]


# What ``_try`` returns when ``stop`` came between two tries: not a failure, the row stays due.
_LEFT = "left due: stopped between tries"
_DELIVERY_ERRORS = (OSError, httpx.HTTPError, smtplib.SMTPException, HubsightError)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of one test notification."""

    target: str
    ok: bool
    elapsed_ms: float
    error: str = ""
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "target": self.target,
            "ok": self.ok,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "error": self.error or None,
            "hint": self.hint or None,
        }


def test_alert(target: Target) -> Alert:
    """A made-up alert that says it is a test, at the target's highest severity."""
    now = datetime.now(UTC)
    ranked = sorted((Severity(s) for s in target.severities), key=lambda s: -s.rank)
    return Alert(
        id=f"test-{uuid.uuid4().hex[:12]}",
        dedup_key=f"hubsight.test|{now.timestamp()}",
        rule_id="hubsight.test",
        title=f"hubsight test notification to {target.name or target.kind}",
        severity=ranked[0] if ranked else Severity.INFO,
        notable=False,
        technique="",
        runbook="Nothing to do: this was sent with 'send test notification'.",
        first_event_time=now,
        last_event_time=now,
        evidence=[],
    )


def send_test(target: Target, transport: httpx.BaseTransport | None = None) -> Delivery:
    """Deliver one test alert to ``target`` (once, whatever its severities) and say how it went."""
    channel = channel_for(target, transport)
    started = time.perf_counter()
    try:
        channel.deliver(test_alert(target))
    except _DELIVERY_ERRORS as exc:
        error, hint = explain(exc)
        return Delivery(channel.name, False, (time.perf_counter() - started) * 1000, error, hint)
    return Delivery(channel.name, True, (time.perf_counter() - started) * 1000)


_HTTP_HINTS = {
    400: "the receiver rejected the JSON: check that the URL expects hubsight's alert document",
    401: "the receiver refused the credentials: check the auth header (or the token in the URL)",
    403: "the receiver refused the credentials: check the auth header (or the token in the URL)",
    404: "the receiver has no such path: check the URL",
    429: "the receiver limits the rate: alerts are retried, then kept as dead letters",
}
_TLS_HINT = (
    "check that the port speaks TLS the way the target says: an https:// webhook needs a TLS "
    "server; for mail, SMTPS (implicit TLS) is usually port 465, STARTTLS 587, plain SMTP 25"
)


def _http_status(exc: httpx.HTTPStatusError) -> tuple[str, str]:
    # Not str(exc): it repeats the URL, which may carry a token.
    code = exc.response.status_code
    hint = _HTTP_HINTS.get(
        code, "the receiver failed; alerts are retried, then kept as dead letters"
    )
    return f"HTTP {code}", hint


def _smtp_answer(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_smtp_text(exc.smtp_error)}"


# Each kind of failure and how to say it, most specific first; ``explain`` tries them on the
# exception and then on its causes, since httpx wraps the socket's or TLS's own error.
_EXPLAINED: list[tuple[type[BaseException] | tuple[type[BaseException], ...], Any]] = [
    (HubsightError, lambda e: (e.message, e.hint)),
    (httpx.HTTPStatusError, _http_status),
    (
        smtplib.SMTPAuthenticationError,
        lambda e: (
            f"SMTP authentication failed: {_smtp_answer(e)}",
            "the server refused the user name or password: check both (Microsoft 365 and Gmail "
            "need SMTP AUTH enabled for the mailbox or an app password)",
        ),
    ),
    (
        smtplib.SMTPNotSupportedError,
        lambda e: (
            f"SMTP: {e}",
            "the server does not offer this on this connection: servers offer AUTH only over "
            "TLS (turn on STARTTLS or SMTPS); turn STARTTLS off if the server has none",
        ),
    ),
    (
        smtplib.SMTPRecipientsRefused,
        lambda e: (
            f"the SMTP server refused the recipients {', '.join(sorted(e.recipients))}",
            "check the addresses, and that the server relays mail for this sender",
        ),
    ),
    (
        smtplib.SMTPSenderRefused,
        lambda e: (
            f"the SMTP server refused the sender: {_smtp_answer(e)}",
            "use a sender address the account may send as",
        ),
    ),
    (
        smtplib.SMTPServerDisconnected,
        lambda e: (f"the SMTP server closed the connection: {e}", _TLS_HINT),
    ),
    (
        smtplib.SMTPResponseException,
        lambda e: (f"SMTP {_smtp_answer(e)}", "see the server's answer"),
    ),
    (
        ssl.SSLCertVerificationError,
        lambda e: (
            f"the server's TLS certificate is not trusted: {e}",
            "set the CA file of a private relay (ca_file), or use the host name on the certificate",
        ),
    ),
    (ssl.SSLError, lambda e: (f"TLS failed: {e}", _TLS_HINT)),
    (
        (TimeoutError, httpx.TimeoutException),
        lambda e: (
            f"no answer in time: {e or type(e).__name__}",
            "check that the receiver runs and that a firewall lets this host reach it",
        ),
    ),
    (
        socket.gaierror,
        lambda e: (f"the host name does not resolve: {e}", "check the host and this host's DNS"),
    ),
    (
        ConnectionRefusedError,
        lambda e: (
            f"connection refused: {e}",
            "nothing listens there: check the host and port, and that the receiver runs",
        ),
    ),
]


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def explain(exc: BaseException) -> tuple[str, str]:
    """A delivery failure as (error, hint); never repeats a URL or a secret."""
    for cause in _causes(exc):
        for kind, describe in _EXPLAINED:
            if isinstance(cause, kind):
                described: tuple[str, str] = describe(cause)
                return described
    return f"{type(exc).__name__}: {exc}", "check the host, the port and the network path"


def _smtp_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
