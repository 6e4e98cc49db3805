"""Turn the time formats Azure writes into timezone-aware UTC datetimes.

Azure records carry ISO 8601 with 0 to 9 fractional digits, ``Z``, an offset or no zone at all
(which Azure means as UTC), US-style ``12/12/2025 3:03:58 PM`` in some exports, a one-digit hour
(``2022-09-09T8:48:50.361Z``) and, in a few legacy feeds, epoch numbers. ``parse_time`` accepts
them all and returns None for anything it cannot read, so a bad time never fails a record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Epoch values above this are milliseconds (this is 5138 AD in seconds).
_MAX_EPOCH_SECONDS = 100_000_000_000

_LOOSE_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{1,2}-\d{1,2})[T ](?P<h>\d{1,2}):(?P<m>\d{1,2})(?::(?P<s>\d{1,2}))?"
    r"(?:[.,](?P<frac>\d{1,9}))?\s*(?P<zone>Z|z|UTC|[+-]\d{2}:?\d{2})?$"
)
_US = re.compile(
    r"^(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})(?:\s+(?P<h>\d{1,2}):(?P<m>\d{2})"
    r"(?::(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?)?\s*(?P<ampm>[AaPp][Mm])?)?"
    # Event Hubs' EventTimeString ends with an offset: "11/14/2025 9:21:36 AM +00:00".
    r"\s*(?P<zone>Z|UTC|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: object) -> datetime | None:
    """The UTC datetime ``value`` denotes, or None when it is absent or not a time."""
    if isinstance(value, str):
        return _parse_text(value.strip())
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if isinstance(value, datetime):
        return _as_utc(value)
    return None


def _parse_text(text: str) -> datetime | None:
    if not text:
        return None
    try:
        # The fast path: CPython 3.11 reads Z, offsets and any number of fraction digits.
        return _as_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        pass
    match = _LOOSE_ISO.match(text)
    if match:
        return _from_loose_iso(match)
    match = _US.match(text)
    if match:
        return _from_us(match)
    if text.isdigit():
        return _from_epoch(float(text))
    return None


def _from_loose_iso(match: re.Match[str]) -> datetime | None:
    try:
        year, month, day = (int(part) for part in match["date"].split("-"))
        stamp = datetime(
            year,
            month,
            day,
            int(match["h"]),
            int(match["m"]),
            int(match["s"] or 0),
            _micros(match["frac"]),
            tzinfo=UTC,
        )
        return stamp - _offset(match["zone"])
    except (ValueError, OverflowError):
        return None


def _from_us(match: re.Match[str]) -> datetime | None:
    hour = int(match["h"] or 0)
    ampm = (match["ampm"] or "").upper()
    if ampm == "PM" and hour < 12:
        hour += 12
    elif ampm == "AM" and hour == 12:
        hour = 0
    try:
        stamp = datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            hour,
            int(match["m"] or 0),
            int(match["s"] or 0),
            _micros(match["frac"]),
            tzinfo=UTC,
        )
        return stamp - _offset(match["zone"])
    except (ValueError, OverflowError):
        return None


def _micros(frac: str | None) -> int:
    return int((frac or "0")[:6].ljust(6, "0"))


def _offset(zone: str | None) -> timedelta:
    if not zone or zone in ("Z", "z", "UTC"):
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))


def _from_epoch(seconds: float) -> datetime | None:
    if seconds != seconds or seconds < 0:  # NaN or before 1970: not a time Azure writes
        return None
    if seconds > _MAX_EPOCH_SECONDS:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _as_utc(stamp: datetime) -> datetime:
    if stamp.tzinfo is UTC:  # the usual case ("Z" or "+00:00"): nothing to convert
        return stamp
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)
