"""Event-time windows: late entries re-open every window they fall into; duplicates count once."""

from __future__ import annotations

from datetime import UTC, datetime

from hubsight.detect.base import EventRef
from hubsight.detect.windows import Entry, Window, crossings

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _entry(ts: float, value: str = "x", offset: int | None = None) -> Entry:
    ref = EventRef(T0, "log", "t", 0, int(ts) if offset is None else offset, 0)
    return Entry(ts=ts, value=value, ref=ref)


def test_duplicate_entries_are_ignored() -> None:
    window = Window()
    assert window.add(_entry(10))
    assert not window.add(_entry(10))
    assert len(window) == 1


def test_a_late_entry_completes_a_later_window() -> None:
    window = Window()
    for ts in (100, 200, 300):
        entry = _entry(ts)
        window.add(entry)
        assert crossings(window, entry, 250, 4) == []
    late = _entry(90)
    window.add(late)
    # The window ending at 300 (from 50) now holds four entries.
    found = crossings(window, late, 250, 4)
    assert [[e.ts for e in span] for span in found] == [[90, 100, 200, 300]]


def test_distinct_counts_values_and_prune_drops_old_entries() -> None:
    window = Window([_entry(1, "a"), _entry(2, "a"), _entry(3, "b")])
    assert crossings(window, _entry(3, "b"), 10, 2, distinct=True) != []
    assert crossings(window, _entry(3, "b"), 10, 3, distinct=True) == []
    window.added = [_entry(1, "c"), _entry(3, "c")]
    assert window.prune(2.5)
    assert [e.ts for e in window] == [3]
    # Entries pruned before they were saved are not saved either.
    assert [e.ts for e in window.added] == [3]
    assert not window.prune(2.5)


def test_head_returns_the_earliest_and_every_entry_tying_with_the_last() -> None:
    window = Window([_entry(ts, offset=i) for i, ts in enumerate((1, 2, 3, 3, 3, 4, 9))])
    assert [e.ts for e in window.head(2, 9, 2)] == [2, 3, 3, 3]
    assert [e.ts for e in window.head(2, 9, 1)] == [2]
    assert [e.ts for e in window.head(0, 3, 10)] == [1, 2, 3, 3, 3]
    assert [e.ts for e in window.between_open(2, 4)] == [2, 3, 3, 3]
    assert window.between_open(5, 9) == []


def test_pruning_drops_what_a_rule_kept_beside_the_entries() -> None:
    window = Window([_entry(1), _entry(5)])
    window.memo = "counts"
    assert not window.prune(1)
    assert window.memo == "counts"
    assert window.prune(2)
    assert window.memo is None
