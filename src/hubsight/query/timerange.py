"""Search scope in time: relative ranges (``last 15 minutes``, ``today``) and absolute instants.

Everything is UTC inside; a user's time zone only decides where "today" starts and how an
ISO time without an offset is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hubsight.errors import ConfigError

_UNITS = {
    "s": "seconds", "sec": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "week": "weeks", "weeks": "weeks",
}  # fmt: skip
_RELATIVE = re.compile(r"(?:last\s+)?(\d+)\s*([a-z]+)", re.IGNORECASE)
_EPOCH_MS = re.compile(r"-?\d{10,}")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ConfigError(
                f"the time range ends ({self.end.isoformat()}) before it starts "
                f"({self.start.isoformat()})",
                hint="give a start (from) earlier than the end (to)",
            )


def zone(name: str) -> tzinfo:
    """The time zone called ``name`` (IANA), or a usage error naming it."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone '{name}'", hint="use an IANA name such as Europe/Paris or UTC"
        ) from None


def parse_relative(text: str, now: datetime, tz: tzinfo = UTC) -> TimeWindow:
    """``last 15 minutes``, ``last 24h``, ``7d``, ``today``, ``yesterday`` ending at ``now``."""
    spoken = text.strip().lower()
    if spoken in {"today", "yesterday"}:
        midnight = datetime.combine(now.astimezone(tz).date(), time(), tzinfo=tz)
        if spoken == "today":
            return TimeWindow(midnight.astimezone(UTC), now.astimezone(UTC))
        return TimeWindow((midnight - timedelta(days=1)).astimezone(UTC), midnight.astimezone(UTC))
    match = _RELATIVE.fullmatch(spoken)
    unit = _UNITS.get(match.group(2)) if match else None
    if match is None or unit is None or int(match.group(1)) < 1:
        raise ConfigError(
            f"cannot read the time range '{text}'",
            hint="write e.g. 'last 15 minutes', 24h, 'last 7 days', today or yesterday",
        )
    try:
        start = now.astimezone(UTC) - timedelta(**{unit: int(match.group(1))})
    except OverflowError:
        raise ConfigError(
            f"the time range '{text}' reaches before the year 1",
            hint="give a range of at most a few years, e.g. 'last 365 days'",
        ) from None
    return TimeWindow(start, now.astimezone(UTC))


def parse_instant(text: str, tz: tzinfo = UTC) -> datetime | None:
    """ISO 8601 (read in ``tz`` when it has no offset) or epoch milliseconds; None otherwise."""
    stripped = text.strip()
    if _EPOCH_MS.fullmatch(stripped):
        try:
            return datetime.fromtimestamp(int(stripped) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None  # past the years a datetime holds: not a time
    try:
        parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def resolve_window(
    *,
    now: datetime,
    last: str | None = None,
    start: str | None = None,
    end: str | None = None,
    tz_name: str = "UTC",
) -> TimeWindow:
    """The window from either a relative ``last`` or absolute ``start``/``end`` (default: 24h)."""
    tz = zone(tz_name)
    if last and (start or end):
        raise ConfigError(
            "give either a relative range (last) or from and to, not both",
            hint="drop last, or from and to",
        )
    if not (start or end):
        return parse_relative(last or "last 24 hours", now, tz)
    if not start:
        raise ConfigError(
            "a range with an end (to) needs a start (from)",
            hint="give the start of the range (from)",
        )
    bounds = []
    # Named as the API, the console (From, To) and the CLI (--from, --to) all call them.
    for label, text in (("start time (from)", start), ("end time (to)", end)):
        instant = parse_instant(text, tz) if text else now.astimezone(UTC)
        if instant is None:
            raise ConfigError(
                f"cannot read the {label} '{text}'",
                hint="write ISO 8601 (2024-05-01T10:00:00Z, or local time without an offset) "
                "or epoch milliseconds",
            )
        bounds.append(instant)
    return TimeWindow(bounds[0], bounds[1])


def parse_since(text: str | None, now: datetime, label: str) -> datetime | None:
    """A bound of a filter: an instant (ISO 8601, epoch ms) or how long ago (``24h``, ``7d``);
    None for no text. An error names the filter ``label`` (``since``, ``--until``)."""
    if not text:
        return None
    try:
        instant = parse_instant(text)
    except OverflowError:
        instant = None  # an offset pushing the year past what a datetime holds: not a time
    if instant is not None:
        return instant
    try:
        return parse_relative(text, now).start
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc.message}", hint=exc.hint) from None
