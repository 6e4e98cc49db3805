"""Every time format Azure writes is read as the right UTC instant; anything else is None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hubsight.parsing.timeparse import parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-03-12T16:02:15.5522137Z", datetime(2019, 3, 12, 16, 2, 15, 552213, tzinfo=UTC)),
        ("2019-03-12T16:02:15Z", datetime(2019, 3, 12, 16, 2, 15, tzinfo=UTC)),
        ("2019-03-12T16:02:15.5+00:00", datetime(2019, 3, 12, 16, 2, 15, 500000, tzinfo=UTC)),
        (
            "2025-03-01T10:15:30.123456789+02:00",
            datetime(2025, 3, 1, 8, 15, 30, 123456, tzinfo=UTC),
        ),
        ("2025-03-01T10:15:30-05:30", datetime(2025, 3, 1, 15, 45, 30, tzinfo=UTC)),
        ("2025-03-01T10:15:30", datetime(2025, 3, 1, 10, 15, 30, tzinfo=UTC)),
        ("2025-03-01 10:15:30.1234567", datetime(2025, 3, 1, 10, 15, 30, 123456, tzinfo=UTC)),
        ("2022-09-09T8:48:50.361Z", datetime(2022, 9, 9, 8, 48, 50, 361000, tzinfo=UTC)),
        ("2022-09-09T8:48:50.361+0100", datetime(2022, 9, 9, 7, 48, 50, 361000, tzinfo=UTC)),
        ("12/12/2025 3:03:58 PM", datetime(2025, 12, 12, 15, 3, 58, tzinfo=UTC)),
        ("12/12/2025 12:03:58 AM", datetime(2025, 12, 12, 0, 3, 58, tzinfo=UTC)),
        ("1/2/2025 9:05:00", datetime(2025, 1, 2, 9, 5, 0, tzinfo=UTC)),
        ("11/07/2025 03:00:12", datetime(2025, 11, 7, 3, 0, 12, tzinfo=UTC)),
        # Event Hubs' EventTimeString: US form with an offset.
        ("11/14/2025 9:21:36 AM +00:00", datetime(2025, 11, 14, 9, 21, 36, tzinfo=UTC)),
        ("11/14/2025 9:21:36 PM -05:00", datetime(2025, 11, 15, 2, 21, 36, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("  2019-03-12T16:02:15Z  ", datetime(2019, 3, 12, 16, 2, 15, tzinfo=UTC)),
    ],
)
def test_parses_azure_time_formats(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "2025-02-30T10:00:00Z",
        "13/45/2025 1:00 PM",
        "2025-01-01T25:00:00Z",
        None,
        True,
        [],
        {},
        float("nan"),
        -5,
        "9" * 40,
    ],
)
def test_unreadable_values_are_none(value: object) -> None:
    assert parse_time(value) is None


def test_epoch_numbers_in_seconds_and_milliseconds() -> None:
    assert parse_time(1_700_000_000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert parse_time(1_700_000_000_500) == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)


def test_aware_datetimes_are_converted_to_utc() -> None:
    local = datetime(2025, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    assert parse_time(local) == datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
