"""Detection settings: engine timing, per-rule enable/thresholds/exceptions, notifications.

Defaults come from code, then ``<data_dir>/detect.toml``, then changes made with the CLI or the
API (kept in the ``rule_settings`` table), later ones winning. Unknown keys are rejected. Every
change made with the CLI or the API bumps the settings generation (``generation``), which a
running ``hubsight run`` watches to apply it within seconds. Notification targets are described
in ``targets``.

    lateness_hours = 24
    learning_days = 7
    investigation_window_hours = 24   # alerts this close about one subject share an investigation
    max_window_entries = 750000       # events held in windows, ~240 bytes each
    [rules."auth.brute_force"]
    enabled = true
    thresholds = { count = 20 }
    exceptions = { users = ["svc-scanner@contoso.com"], ips = ["10.0.0.0/8"], apps = [] }
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from hubsight.detect.base import TEN_YEARS_DAYS
from hubsight.detect.custom import CustomAlertSpec
from hubsight.detect.db import DetectDB
from hubsight.detect.generation import bump_generation
from hubsight.detect.targets import NotifyConfig
from hubsight.errors import ConfigError, SettingError
from hubsight.parsing.event import Event

CONFIG_NAME = "detect.toml"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RuleExceptions(BaseModel):
    """Who and what a rule must not alert on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()

    @cached_property
    def _networks(self) -> tuple[IPNetwork, ...]:
        try:
            return tuple(ipaddress.ip_network(ip, strict=False) for ip in self.ips)
        except ValueError as exc:
            raise SettingError(
                f"rule exception {exc}",
                field="ips",
                hint="give IPs as 203.0.113.7 or CIDRs as 10.0.0.0/8",
            ) from exc

    @cached_property
    def _users(self) -> frozenset[str]:
        return frozenset(u.lower() for u in self.users)

    @cached_property
    def _apps(self) -> frozenset[str]:
        return frozenset(a.lower() for a in self.apps)

    def empty(self) -> bool:
        """Whether there is nothing to except."""
        return not (self.users or self.ips or self.apps)

    def validate_ips(self) -> None:
        """Raise ConfigError when an IP or CIDR does not parse."""
        _ = self._networks

    def matches(self, event: Event) -> bool:
        """Whether ``event`` is excepted (its user, IP or application is listed)."""
        if event.user is not None and event.user.lower() in self._users:
            return True
        for app in (event.application, event.application_id):
            if app is not None and app.lower() in self._apps:
                return True
        if self.ips and event.source_ip:
            try:
                address = ipaddress.ip_address(event.source_ip)
            except ValueError:
                return False
            return any(address in net for net in self._networks)
        return False


class RuleSettings(BaseModel):
    """How one rule is set up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    thresholds: dict[str, Any] = Field(default_factory=dict)
    exceptions: RuleExceptions = Field(default_factory=RuleExceptions)


class DetectConfig(BaseModel):
    """All detection settings of a data directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Durations stop at ten years, as a rule's do (``hubsight.detect.base``), so that ``inf`` or a
    # typo is refused when the file is read rather than overflowing a timedelta at run time.
    lateness_hours: float = Field(default=24, gt=0, le=TEN_YEARS_DAYS * 24)
    learning_days: float = Field(default=7, ge=0, le=TEN_YEARS_DAYS)
    baseline_days: float = Field(default=90, gt=0, le=TEN_YEARS_DAYS)
    investigation_window_hours: float = Field(default=24, gt=0, le=TEN_YEARS_DAYS * 24)
    # Events held in detection windows, ~240 bytes of memory each (``windows.ENTRY_BYTES``).
    max_window_entries: int = Field(default=750_000, ge=1_000)
    rules: dict[str, RuleSettings] = Field(default_factory=dict)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    custom: tuple[CustomAlertSpec, ...] = ()

    @property
    def lateness(self) -> timedelta:
        """How late an event may arrive and still be counted in windows."""
        return timedelta(hours=self.lateness_hours)

    @property
    def learning(self) -> timedelta:
        """The silent learning period of baseline rules."""
        return timedelta(days=self.learning_days)

    @property
    def investigation_window(self) -> timedelta:
        """How close in event time alerts about one subject must be to share an investigation."""
        return timedelta(hours=self.investigation_window_hours)

    @property
    def baseline_horizon(self) -> timedelta:
        """How far back baselines look."""
        return timedelta(days=self.baseline_days)

    @classmethod
    def load(cls, data_dir: Path) -> DetectConfig:
        """The settings of ``data_dir``'s ``detect.toml``, or the defaults when it is absent."""
        path = data_dir / CONFIG_NAME
        if not path.exists():
            return cls()
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{path} cannot be read: {exc}",
                hint="make it a UTF-8 text file readable by this user, or move it away",
            ) from exc
        try:
            return cls.model_validate(tomllib.loads(text))
        except (tomllib.TOMLDecodeError, ValidationError) as exc:
            raise ConfigError(
                f"{path} is not valid: {_first_error(exc)}",
                hint="fix the file; the keys are described in hubsight.detect.settings",
            ) from exc


class SettingsStore:
    """Rule settings changed at run time (CLI, API), kept in the detection database."""

    def __init__(self, db: DetectDB) -> None:
        self.db = db

    def all(self) -> dict[str, RuleSettings]:
        """Every rule's stored settings."""
        return {
            row["rule_id"]: RuleSettings(
                enabled=None if row["enabled"] is None else bool(row["enabled"]),
                thresholds=json.loads(row["thresholds"]),
                exceptions=RuleExceptions.model_validate(json.loads(row["exceptions"])),
            )
            for row in self.db.rows("SELECT * FROM rule_settings")
        }

    def _upsert(self, rule_id: str, values: dict[str, object]) -> None:
        # One statement in one transaction, so that columns changed together land together.
        columns = ", ".join(values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values)
        with self.db.transaction() as conn:
            conn.execute(
                f"INSERT INTO rule_settings (rule_id, {columns}) "  # noqa: S608 - columns are ours
                f"VALUES (?{', ?' * len(values)}) ON CONFLICT(rule_id) DO UPDATE SET {updates}",
                (rule_id, *values.values()),
            )
            bump_generation(conn)

    def set_enabled(self, rule_id: str, enabled: bool) -> None:
        """Enable or disable a rule."""
        self._upsert(rule_id, {"enabled": int(enabled)})

    def set_thresholds(self, rule_id: str, thresholds: dict[str, Any]) -> None:
        """Replace a rule's threshold overrides."""
        self._upsert(rule_id, {"thresholds": json.dumps(thresholds)})

    def set_exceptions(self, rule_id: str, exceptions: RuleExceptions) -> None:
        """Replace a rule's exceptions."""
        exceptions.validate_ips()
        self._upsert(rule_id, {"exceptions": exceptions.model_dump_json()})

    def set_tuning(
        self, rule_id: str, thresholds: dict[str, Any], exceptions: RuleExceptions
    ) -> None:
        """Replace a rule's threshold overrides and exceptions together: both or neither."""
        exceptions.validate_ips()
        self._upsert(
            rule_id,
            {"thresholds": json.dumps(thresholds), "exceptions": exceptions.model_dump_json()},
        )


def effective(config: DetectConfig, stored: dict[str, RuleSettings], rule_id: str) -> RuleSettings:
    """A rule's settings: the file's, overridden by those changed at run time."""
    base = config.rules.get(rule_id, RuleSettings())
    override = stored.get(rule_id)
    if override is None:
        return base
    return RuleSettings(
        enabled=base.enabled if override.enabled is None else override.enabled,
        thresholds={**base.thresholds, **override.thresholds},
        exceptions=base.exceptions if override.exceptions.empty() else override.exceptions,
    )


def refusal(err: ErrorDetails) -> str:
    """A refused setting as "where = value: why", a long value cut short to stay legible."""
    text = json.dumps(err["input"], default=str)
    shown = text if len(text) <= 40 else f"{text[:37]}..."
    return f"{'.'.join(str(p) for p in err['loc'])} = {shown}: {err['msg']}"


def _first_error(exc: Exception) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    err = exc.errors()[0]
    # A notification target's values may be credentials (a webhook URL's token, an
    # Authorization header), and a table or list shown whole may hold them: name the place only.
    if err["loc"][:1] == ("notify",) or isinstance(err["input"], dict | list):
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return refusal(err)
