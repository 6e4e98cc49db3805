"""Time ranges: relative spans, today/yesterday in a zone, ISO and epoch-ms instants."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from hubsight.errors import ConfigError
from hubsight.query.timerange import TimeWindow, parse_instant, parse_relative, resolve_window, zone

NOW = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("last 15 minutes", timedelta(minutes=15)),
        ("last 24h", timedelta(hours=24)),
        ("24h", timedelta(hours=24)),
        ("last 7 days", timedelta(days=7)),
        ("Last 1 Week", timedelta(weeks=1)),
        ("90s", timedelta(seconds=90)),
        ("last 2 hours", timedelta(hours=2)),
    ],
)
def test_relative_spans_end_now(text: str, span: timedelta) -> None:
    assert parse_relative(text, NOW) == TimeWindow(NOW - span, NOW)


def test_today_and_yesterday_start_at_midnight_in_the_users_zone() -> None:
    paris = zone("Europe/Paris")  # UTC+1 in March before the switch
    assert parse_relative("today", NOW, paris) == TimeWindow(
        datetime(2026, 3, 10, 0, 0, tzinfo=paris).astimezone(UTC), NOW
    )
    assert parse_relative("yesterday", NOW, paris) == TimeWindow(
        datetime(2026, 3, 8, 23, 0, tzinfo=UTC), datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    )
    # In New York it is still the 9th at 01:30 UTC.
    assert parse_relative("today", NOW, zone("America/New_York")).start == datetime(
        2026, 3, 9, 4, 0, tzinfo=UTC
    )


def test_instants() -> None:
    assert parse_instant("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_instant("2026-03-01T10:00:00+02:00") == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert parse_instant("1772359200000") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_instant("2026-03-01 10:00", zone("Europe/Paris")) == datetime(
        2026, 3, 1, 9, tzinfo=UTC
    )
    assert parse_instant("next tuesday") is None


def test_resolve_window() -> None:
    assert resolve_window(now=NOW) == TimeWindow(NOW - timedelta(hours=24), NOW)
    assert resolve_window(now=NOW, start="2026-03-09T00:00:00Z") == TimeWindow(
        datetime(2026, 3, 9, tzinfo=UTC), NOW
    )
    assert resolve_window(
        now=NOW, start="2026-03-09T00:00", end="2026-03-09T12:00", tz_name="Asia/Tokyo"
    ) == TimeWindow(datetime(2026, 3, 8, 15, tzinfo=UTC), datetime(2026, 3, 9, 3, tzinfo=UTC))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"last": "fortnight"}, "cannot read the time range 'fortnight'"),
        ({"last": "last 0 days"}, "cannot read the time range"),
        ({"last": "1h", "start": "2026-03-09T00:00:00Z"}, "not both"),
        ({"end": "2026-03-09T00:00:00Z"}, "a range with an end (to) needs a start (from)"),
        ({"start": "soon"}, "cannot read the start time (from) 'soon'"),
        ({"start": "2026-03-09T00:00:00Z", "end": "2026-03-08T00:00:00Z"}, "before it starts"),
        ({"last": "1h", "tz_name": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_ranges_are_usage_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        resolve_window(now=NOW, **kwargs)
    assert caught.value.hint
