"""Sigma correlations keep running counts: long groups read few entries, alerts stay exact.

The alerts are checked against the definition (``test_sigma_correlation``) on groups long
enough that an alert's evidence is capped and windows end at tied times; the cost is checked
by counting the entries a correlation reads from its windows, which recounting every window
made grow with the square of a group's size.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from hubsight.detect.alerts import MAX_EVIDENCE
from hubsight.detect.base import EventRef, Finding
from hubsight.detect.windows import Entry, Window
from hubsight.parsing.event import Event

from tests.detect.context import NoContext
from tests.detect.test_sigma_correlation import (
    FAILED,
    IPS,
    RULES,
    SUCCESS,
    USERS,
    _correlation_rule,
    _definition,
    _deliver,
    _signin,
    _view,
)


@pytest.mark.parametrize("kind", sorted(RULES))
def test_a_long_group_gives_the_capped_alerts_of_the_definition(tmp_path: Path, kind: str) -> None:
    rule = _correlation_rule(tmp_path, kind)
    rng = random.Random(kind)
    # 360 sign-ins of one user over five hours, on two-minute ticks (so that many share a
    # time), with a quiet hour and a half in the middle: two alerts, each with more than
    # MAX_EVIDENCE events. Successes are rare and the address changes rarely, so a window
    # holds first when it already has many events, all of which the alert must cite.
    minutes = [rng.randrange(0, 60) * 2 for _ in range(180)]
    minutes += [rng.randrange(105, 150) * 2 for _ in range(180)]
    events, ip = [], IPS[0]
    for offset, minute in enumerate(minutes):
        ip = rng.choice(IPS) if rng.random() < 0.03 else ip
        result = SUCCESS if rng.random() < 0.04 else FAILED
        events.append(_signin(minute, USERS[0], result, ip, offset))
    in_order = _deliver(rule, [[e] for e in sorted(events, key=lambda e: e.timestamp)])
    expected = _definition(kind, events)
    assert max(len(refs) for refs in expected.values()) > MAX_EVIDENCE
    got = {
        (a.context["sigma_group"]["UserPrincipalName"], int(a.dedup_key.rsplit("|", 1)[1])): (
            a.evidence,
            a.first_event_time,
            a.last_event_time,
        )
        for a in in_order.values()
    }
    assert got == {
        (user.lower(), bucket): (
            sorted(refs)[:MAX_EVIDENCE],
            min(refs).timestamp,
            max(refs).timestamp,
        )
        for (user, bucket), refs in expected.items()
    }
    shuffled = events[:]
    rng.shuffle(shuffled)
    batches = [shuffled[start : start + 7] for start in range(0, len(shuffled), 7)]
    restarted = tmp_path / "restarted"
    restarted.mkdir()
    assert _view(_deliver(rule, batches, restarted)) == _view(in_order)


@pytest.mark.parametrize("kind", sorted(RULES))
def test_a_late_event_at_the_window_edge_counts_for_later_windows(
    tmp_path: Path, kind: str
) -> None:
    rule = _correlation_rule(tmp_path, kind)
    user = USERS[0]
    # A failure exactly a timespan (10 minutes) before two events at minute 10; it arrives
    # after the first of them, the newest window's edge, and must count for the second too.
    edge = _signin(0, user, FAILED, IPS[0], 0)
    result = FAILED if kind.endswith("count") else SUCCESS
    first, second = (_signin(10, user, result, IPS[1], offset) for offset in (1, 2))
    third = _signin(9, user, FAILED, IPS[1], 3)
    in_order = _deliver(rule, [[edge], [third], [first], [second]])
    assert in_order
    assert _view(_deliver(rule, [[first], [edge], [third], [second]])) == _view(in_order)
    assert _view(_deliver(rule, [[third], [first], [second], [edge]])) == _view(in_order)


def test_the_earliest_events_are_cited_whatever_order_events_at_one_time_arrived_in(
    tmp_path: Path,
) -> None:
    rule = _correlation_rule(tmp_path, "temporal_ordered")
    user = USERS[0]
    # 99 failures a second apart, three at the next second arriving last first, then the
    # success: the alert keeps the earliest MAX_EVIDENCE by time, then by place in the log.
    failures = [_signin(i / 60, user, FAILED, IPS[0], i) for i in range(99)]
    tied = [_signin(99 / 60, user, FAILED, IPS[0], offset) for offset in (302, 301, 300)]
    success = _signin(100 / 60, user, SUCCESS, IPS[0], 400)
    (alert,) = _deliver(rule, [[*failures, *tied, success]]).values()
    everything = [*failures, *tied, success]
    assert alert.evidence == sorted(EventRef.of(e) for e in everything)[:MAX_EVIDENCE]
    assert alert.evidence[-1].source_offset == 300
    assert alert.last_event_time == success.timestamp


class _CountingWindow(Window):
    """A window that counts the entries its readers are handed."""

    __slots__ = ("read",)

    def __init__(self) -> None:
        super().__init__()
        self.read = 0

    def between(self, start: float, end: float) -> list[Entry]:
        found = super().between(start, end)
        self.read += len(found)
        return found

    def between_open(self, start: float, stop: float) -> list[Entry]:
        found = super().between_open(start, stop)
        self.read += len(found)
        return found

    def head(self, start: float, end: float, count: int) -> list[Entry]:
        found = super().head(start, end, count)
        self.read += len(found)
        return found


class _OneWindow(NoContext):
    """The little of ``RuleContext`` a correlation asks for: one window per group."""

    def __init__(self) -> None:
        self.windows: dict[str, _CountingWindow] = {}

    def window(self, key: str) -> _CountingWindow:
        return self.windows.setdefault(key, _CountingWindow())


@pytest.mark.parametrize("kind", sorted(RULES))
def test_5000_signins_in_one_group_read_a_bounded_number_of_entries_each(
    tmp_path: Path, kind: str
) -> None:
    rule = _correlation_rule(tmp_path, kind)
    # The base rules' 10-minute timespan, as one day: every window holds the whole group.
    rule._timespan = timedelta(days=1).total_seconds()
    count = 5000
    events = [
        _signin(i * 0.1, USERS[0], SUCCESS if i % 3 == 2 else FAILED, IPS[i % 3], i)
        for i in range(count)
    ]
    ctx = _OneWindow()
    findings: list[Finding] = []
    for event in events:
        findings.extend(rule.evaluate(event, ctx))
    (window,) = ctx.windows.values()
    assert len(window) == len(_counted(kind, events))
    # Each event reads itself, the earliest MAX_EVIDENCE of its window and a few more:
    # recounting read the whole window, 5000 * 5000 / 2 entries.
    assert window.read <= count * (MAX_EVIDENCE + 5)
    # Each event is cited about once, with the window's first and last.
    assert sum(len(f.evidence) for f in findings) <= 3 * len(findings) + MAX_EVIDENCE
    cited = sorted({ref for f in findings for ref in f.evidence})
    assert cited[:MAX_EVIDENCE] == _earliest_counted(kind, events)
    assert max(f.evidence[-1] for f in findings) == EventRef.of(_last_counted(kind, events))


def _counted(kind: str, events: list[Event]) -> list[Event]:
    if kind in ("temporal", "temporal_ordered"):
        return events
    return [e for e in events if e.result != "SUCCESS"]


def _earliest_counted(kind: str, events: list[Event]) -> list[EventRef]:
    return [EventRef.of(e) for e in _counted(kind, events)[:MAX_EVIDENCE]]


def _last_counted(kind: str, events: list[Event]) -> Event:
    return _counted(kind, events)[-1]


@pytest.mark.parametrize(("kind", "needed"), [("event_count", 3), ("value_count", 2)])
def test_a_group_short_of_the_count_keeps_no_running_counts_until_it_reaches_it(
    tmp_path: Path, kind: str, needed: int
) -> None:
    # Most groups (a sign-in session) never reach the count: they are not counted. The one that
    # does, here through a late event, is counted afresh and fires on every event it holds.
    rule = _correlation_rule(tmp_path, kind)
    events = [_signin(i, USERS[0], FAILED, IPS[i], i) for i in range(needed)]
    ctx = _OneWindow()
    early = [f for e in reversed(events[1:]) for f in rule.evaluate(e, ctx)]
    (window,) = ctx.windows.values()
    assert early == []
    assert len(window) == needed - 1
    assert window.memo is None
    (finding,) = rule.evaluate(events[0], ctx)
    assert window.memo is not None
    assert finding.evidence == [EventRef.of(e) for e in events]
    assert finding.at == events[-1].timestamp
