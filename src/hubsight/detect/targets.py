"""Notification targets: webhook, syslog (RFC 5424) and SMTP, each for a set of severities.

Targets come from two places, and both are used:

- ``detect.toml``'s ``[notify]`` section, read-only here; its secrets come from environment
  variables (``password_env``), never from the file.
- the console, the API and the CLI, which keep them in the ``notify_targets`` table of the
  detection database; their secrets (webhook URL and auth header, SMTP password) are stored as
  Fernet tokens made with the data directory's key (``hubsight.store.vault``).

A stored target named like a file target replaces it, as run-time rule settings override the
file's. A file target without a name is called ``<kind>-<n>`` (``webhook-1``). In the file:

    [[notify.smtp]]
    name = "soc-mail"
    host = "smtp.contoso.com"
    port = 587
    starttls = true
    sender = "hubsight@contoso.com"
    recipients = ["soc@contoso.com"]
    username = "hubsight@contoso.com"
    password_env = "HUBSIGHT_SMTP_PASSWORD"
    severities = ["Critical", "High"]
"""

from __future__ import annotations

import json
import time
import typing
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from hubsight.detect.db import DetectDB
from hubsight.detect.generation import bump_generation
from hubsight.errors import AlreadyExistsError, ConfigError, NotFoundError, SecretRequired
from hubsight.store.vault import Vault

SeverityName = Literal["Critical", "High", "Medium", "Low", "Info"]
Origin = Literal["detect.toml", "console"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_targets (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, secrets TEXT NOT NULL,
    updated_at REAL NOT NULL);
"""


class _Target(BaseModel):
    """What every target has: a name, a switch, the severities it receives, its retries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_fields: ClassVar[tuple[str, ...]] = ()

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    enabled: bool = True
    severities: tuple[SeverityName, ...] = ("Critical", "High")
    retries: int = Field(default=2, ge=0, le=10)
    # "investigation": only the alert that opens an investigation is sent, not those joining it.
    per: Literal["alert", "investigation"] = "alert"

    def destination(self) -> str:
        """Where the target's secrets are sent: an edit changing it needs them entered again."""
        return self.where()

    def where(self) -> str:
        """Where the target delivers, for people (no secret)."""
        raise NotImplementedError


class WebhookConfig(_Target):
    """POST each alert as JSON; retried, then kept as a dead letter."""

    # The URL often carries the receiver's credential in its path or query (Slack, Teams).
    secret_fields: ClassVar[tuple[str, ...]] = ("url", "auth_header")

    kind: Literal["webhook"] = "webhook"
    url: SecretStr
    # Sent as the Authorization header, e.g. "Bearer abc..." or "Basic ...".
    auth_header: SecretStr | None = None
    retries: int = Field(default=3, ge=0, le=10)
    timeout_seconds: PositiveFloat = 5.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr) -> SecretStr:
        # The message must not repeat the URL: it may hold a token.
        try:
            parsed = httpx.URL(url.get_secret_value())
        except httpx.InvalidURL:
            raise ValueError("the webhook URL does not parse") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the webhook URL must be http(s)://host/...")
        return url

    def where(self) -> str:
        """Scheme, host and port only: the rest of the URL may be a credential."""
        url = httpx.URL(self.url.get_secret_value())
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}"


class SyslogConfig(_Target):
    """Send each alert as an RFC 5424 message over UDP or TCP (octet counting)."""

    kind: Literal["syslog"] = "syslog"
    host: str = Field(min_length=1)
    port: int = Field(default=514, ge=1, le=65535)
    protocol: Literal["udp", "tcp"] = "udp"

    def where(self) -> str:
        """Protocol, host and port."""
        return f"{self.protocol}://{self.host}:{self.port}"


class SmtpConfig(_Target):
    """Mail each alert, over STARTTLS (usually port 587), SMTPS (465) or plain SMTP (25)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("password",)

    kind: Literal["smtp"] = "smtp"
    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(min_length=3)
    recipients: tuple[str, ...] = Field(min_length=1)
    starttls: bool = False
    smtps: bool = False
    username: str | None = None
    password: SecretStr | None = None
    # Read from this environment variable when no password is stored (detect.toml's way).
    password_env: str | None = None
    # A PEM bundle of the CAs to trust instead of the system's (a private mail relay).
    ca_file: str | None = None
    timeout_seconds: PositiveFloat = 10.0

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpConfig:
        if self.starttls and self.smtps:
            raise ValueError("choose STARTTLS or SMTPS, not both")
        return self

    def destination(self) -> str:
        """The mail server: recipients may change and keep the password."""
        return f"{'smtps' if self.smtps else 'smtp'}://{self.host}:{self.port}"

    def where(self) -> str:
        """Server and recipients."""
        scheme = "smtps" if self.smtps else "smtp"
        return f"{scheme}://{self.host}:{self.port} to {', '.join(self.recipients)}"


# The one list of target kinds: the parser and ``KINDS`` derive from it, ``notify.CHANNELS``
# maps each kind to its channel (a test checks that every kind has one).
Target = WebhookConfig | SyslogConfig | SmtpConfig
_ADAPTER: TypeAdapter[Target] = TypeAdapter(Annotated[Target, Field(discriminator="kind")])
KINDS: dict[str, type[Target]] = {
    cls.model_fields["kind"].default: cls for cls in typing.get_args(Target)
}


class NotifyConfig(BaseModel):
    """The ``[notify]`` section of ``detect.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: tuple[WebhookConfig, ...] = ()
    syslog: tuple[SyslogConfig, ...] = ()
    smtp: tuple[SmtpConfig, ...] = ()

    @model_validator(mode="after")
    def _no_plain_secrets(self) -> NotifyConfig:
        if any(w.auth_header is not None for w in self.webhooks) or any(
            m.password is not None for m in self.smtp
        ):
            raise ValueError(
                "secrets do not belong in detect.toml: use password_env, or add the target in "
                "the console (Settings), which stores secrets encrypted"
            )
        return self

    def targets(self) -> list[Target]:
        """Every target of the file, each with a name."""
        found: list[Target] = []
        for section in type(self).model_fields:
            group: tuple[Target, ...] = getattr(self, section)
            for number, target in enumerate(group, 1):
                name = target.name or f"{target.kind}-{number}"
                found.append(target.model_copy(update={"name": name}))
        return found


def parse_target(data: dict[str, Any]) -> Target:
    """A target from JSON-like data; ``ConfigError`` names the first problem, never the input."""
    # A kind that is no string (a list, an object) is no kind either, not a TypeError.
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(
            "a notification target needs a kind", hint=f"kind is one of {', '.join(KINDS)}"
        )
    try:
        target = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"][1:])
        raise ConfigError(
            f"notification target: {where}: {err['msg']}",
            hint="see the target's fields in `hubsight notify list --json` or the Settings page",
        ) from None
    if target.name is None:
        raise ConfigError("a notification target needs a name", hint="e.g. soc-mail")
    return target


def secret_state(target: Target) -> dict[str, str]:
    """Each secret field as "set" or "not set"."""
    return {
        field: "not set" if getattr(target, field) is None else "set"
        for field in target.secret_fields
    }


def public(target: Target, origin: Origin) -> dict[str, Any]:
    """A target as the API and CLI show it: no secret, only whether each one is set."""
    doc = target.model_dump(mode="json", exclude=set(target.secret_fields))
    return doc | secret_state(target) | {"where": target.where(), "origin": origin}


def keep_secrets(body: dict[str, Any], current: Target) -> Target:
    """``body`` parsed, every secret it leaves empty taken from ``current`` (same kind only).

    A stored secret never follows a changed destination: whoever may edit the address could
    otherwise have it sent to a host of their choosing. Such an edit raises ``SecretRequired``.
    """
    merged = dict(body)
    if merged.get("kind") != current.kind:
        return parse_target(merged)
    kept = []
    for field in current.secret_fields:
        stored = getattr(current, field)
        if not merged.get(field) and stored is not None:
            merged[field] = stored.get_secret_value()
            kept.append(field)
    target = parse_target(merged)
    if kept and target.destination() != current.destination():
        raise SecretRequired(
            f"the destination changed to {target.destination()}: enter {' and '.join(kept)} again",
            hint="a stored secret is never sent to a new destination; type it with the change",
        )
    return target


@dataclass(frozen=True, slots=True)
class Configured:
    """A target in use and where it was configured."""

    target: Target
    origin: Origin

    @property
    def name(self) -> str:
        """The target's name."""
        return self.target.name or ""


class TargetStore:
    """Targets added with the console, API or CLI, secrets encrypted, in the detection DB."""

    def __init__(self, db: DetectDB, vault: Vault) -> None:
        self.db = db
        self._vault = vault
        # A read first: the API makes a store per request and should not take the write lock.
        if not db.rows("SELECT 1 FROM sqlite_master WHERE name = 'notify_targets'"):
            db.execute(_SCHEMA)

    def _split(self, target: Target) -> tuple[str, str]:
        plain = target.model_dump_json(exclude=set(target.secret_fields))
        secrets = {
            field: value.get_secret_value()
            for field in target.secret_fields
            if (value := getattr(target, field)) is not None
        }
        return plain, self._vault.encrypt(json.dumps(secrets))

    def _join(self, plain: str, token: str) -> Target:
        return parse_target(json.loads(plain) | json.loads(self._vault.decrypt(token)))

    def all(self) -> list[Target]:
        """Every stored target, by name."""
        rows = self.db.rows("SELECT config, secrets FROM notify_targets ORDER BY name")
        return [self._join(row["config"], row["secrets"]) for row in rows]

    def get(self, name: str) -> Target:
        """The stored target called ``name``."""
        rows = self.db.rows("SELECT config, secrets FROM notify_targets WHERE name = ?", (name,))
        if not rows:
            raise _not_found(name)
        return self._join(rows[0]["config"], rows[0]["secrets"])

    def add(self, target: Target) -> None:
        """Store a new target; its name must be free."""
        plain, token = self._split(target)
        with self.db.transaction() as conn:
            taken = conn.execute("SELECT 1 FROM notify_targets WHERE name = ?", (target.name,))
            if taken.fetchone() is not None:
                raise AlreadyExistsError(
                    f"a notification target named {target.name!r} exists already",
                    hint="choose another name, or edit that target",
                )
            conn.execute(
                "INSERT INTO notify_targets VALUES (?, ?, ?, ?, ?)",
                (target.name, target.kind, plain, token, time.time()),
            )
            bump_generation(conn)

    def replace(self, target: Target) -> None:
        """Overwrite a stored target."""
        plain, token = self._split(target)
        with self.db.transaction() as conn:
            changed = conn.execute(
                "UPDATE notify_targets SET kind = ?, config = ?, secrets = ?, updated_at = ? "
                "WHERE name = ?",
                (target.kind, plain, token, time.time(), target.name),
            ).rowcount
            if not changed:
                raise _not_found(target.name or "")
            bump_generation(conn)

    def remove(self, name: str) -> None:
        """Delete a stored target."""
        with self.db.transaction() as conn:
            if not conn.execute("DELETE FROM notify_targets WHERE name = ?", (name,)).rowcount:
                raise _not_found(name)
            bump_generation(conn)


def configured(config: NotifyConfig, stored: list[Target]) -> list[Configured]:
    """The targets in use: the file's, each replaced by a stored one of the same name."""
    names = {t.name for t in stored}
    found = [Configured(t, "detect.toml") for t in config.targets() if t.name not in names]
    return found + [Configured(t, "console") for t in stored]


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"no notification target named {name!r} was added in the console",
        hint="`hubsight notify list` shows them; targets of detect.toml are changed in the file",
    )
