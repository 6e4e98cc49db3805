"""EngineState.shed: the cut that keeps the newest entries, found without sorting them all."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubsight.detect.base import EventRef
from hubsight.detect.db import DetectDB
from hubsight.detect.state import EngineState
from hubsight.detect.windows import Entry, Window

_REF = EventRef(
    timestamp=datetime(2026, 1, 5, tzinfo=UTC),
    log_name="test",
    source_topic="t",
    source_partition=0,
    source_offset=0,
    record_index=0,
)
# Rules' retention beyond the cut (seconds): none, an hour, three days.
RETENTION = {"a": 0.0, "b": 3600.0, "c": 3 * 86400.0}


def _state(windows: dict[tuple[str, str], list[float]]) -> EngineState:
    state = EngineState()
    for wkey, times in windows.items():
        state.windows[wkey] = Window([Entry(t, "v", _REF) for t in times], key=wkey)
    state.entries = sum(map(len, windows.values()))
    return state


def _values(state: EngineState) -> list[float]:
    return sorted(
        e.ts + RETENTION[wkey[0]] for wkey, window in state.windows.items() for e in window
    )


def _check(windows: dict[tuple[str, str], list[float]], keep: int) -> None:
    state = _state(windows)
    values = _values(state)
    cut = state.shed(keep, RETENTION)
    # The keep-th newest time + retention, as sorting them all finds it.
    assert cut == values[len(values) - keep] == state.shed_before
    left = _values(state)
    # The newest stay: every entry at or after the cut, none before; at least keep of them, and
    # more only where entries tie with the cut.
    assert left == [v for v in values if v >= cut]
    assert len(left) >= keep > len([v for v in left if v > cut])
    assert state.entries == len(left)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from(sorted(RETENTION)), st.sampled_from(["u1", "u2", "u3"])),
        st.lists(st.integers(0, 200).map(lambda m: 1.7e9 + 60.0 * m), min_size=1, max_size=40),
        min_size=1,
    ),
    st.integers(1, 10_000),
)
def test_shed_keeps_the_newest_as_a_full_sort_would(
    windows: dict[tuple[str, str], list[float]], keep: int
) -> None:
    total = sum(map(len, windows.values()))
    if keep >= total:
        # Nothing to drop: no cut.
        state = _state(windows)
        assert state.shed(keep, RETENTION) == 0.0
        assert _values(state) == _values(_state(windows))
        return
    _check(windows, keep)


@pytest.mark.parametrize("keep", [1, 4_095, 4_096, 4_097, 30_000, 59_999])
@pytest.mark.parametrize("seconds", [10, 100_000])
def test_a_large_shed_narrows_the_cut_and_keeps_the_newest(keep: int, seconds: int) -> None:
    # 60,000 entries in 900 windows of different sizes: the cut is narrowed before sorting;
    # over 10 seconds nearly every entry ties with many others.
    rng = random.Random(keep * seconds)
    windows = {
        (rule, f"user{n}"): sorted(1.7e9 + rng.randrange(seconds) for _ in range(size))
        for n, size in enumerate(rng.choice([1, 3, 20, 150]) for _ in range(300))
        for rule in RETENTION
    }
    scale = 60_000 / sum(map(len, windows.values()))
    windows = {k: v[: max(1, round(len(v) * scale))] for k, v in windows.items()}
    _check(windows, min(keep, sum(map(len, windows.values())) - 1))


def test_a_shed_among_more_tying_entries_than_it_sorts_at_once() -> None:
    # 10,000 entries at one time: the cut cannot be narrowed between them; all are kept.
    windows = {("a", "u1"): [1.7e9] * 6_000, ("a", "u2"): [1.7e9] * 4_000, ("a", "u3"): [1.6e9]}
    state = _state(windows)
    assert state.shed(5_000, RETENTION) == 1.7e9
    assert [len(w) for w in state.windows.values()] == [6_000, 4_000]


def test_a_window_saved_lists_itself_again_when_it_gains_an_entry(tmp_path: Path) -> None:
    db = DetectDB(tmp_path / "detect.sqlite3")
    state = EngineState()
    window = state.windows[("a", "u1")] = Window(key=("a", "u1"), changed=state.dirty_windows)
    assert not window.added
    for minute, expected in ((0, 1), (1, 2), (2, 3)):
        entry = Entry(1.7e9 + 60 * minute, "v", _REF)
        assert window.add(entry)
        assert window.added == [entry]
        assert state.dirty_windows == {("a", "u1"): window}
        with db.transaction() as conn:
            state.save(conn, baselines=True)
        state.saved()
        # Saved: nothing unsaved, not listed, and each save wrote only what was new.
        assert not window.added
        assert not state.dirty_windows
        assert len(db.rows("SELECT body FROM window_batches")) == expected
    again = EngineState()
    again.load(db)
    assert list(again.windows[("a", "u1")]) == list(window)
    db.close()


def test_pruning_every_unsaved_entry_leaves_none_to_save() -> None:
    window = Window(key=("a", "u1"))
    window.add(Entry(1.7e9, "v", _REF))
    window.add(Entry(1.7e9 + 60, "w", _REF))
    assert window.prune(1.7e9 + 1)
    assert [e.value for e in window.added] == ["w"]
    assert window.prune(1.7e9 + 61)
    assert not window.added
    # The next entry starts a new list of unsaved ones.
    window.add(Entry(1.7e9 + 120, "x", _REF))
    assert [e.value for e in window.added] == ["x"]


def test_a_shed_bounded_by_latest_cuts_every_rule_when_the_newest_alone_are_over_keep() -> None:
    # Every entry is after ``latest``: no retention can be kept whole, so the newest ``keep``
    # stay, whatever their rule, and events before them are too late.
    times = [1.7e9 + 60.0 * m for m in range(10)]
    state = _state({("a", "u1"): times, ("c", "u1"): times})
    cut = state.shed(5, RETENTION, latest=1.7e9 - 3600.0)
    assert cut == times[-3] == state.shed_before
    left = sorted(e.ts for window in state.windows.values() for e in window)
    assert left == sorted(times[-3:] * 2)
    assert state.entries == 6


def test_a_shed_before_latest_is_the_unbounded_one() -> None:
    # The retention-shifted cut falls before ``latest``: bounding it changes nothing.
    windows = {("b", "u1"): [1.7e9 + 60.0 * m for m in range(100)]}
    unbounded, bounded = _state(windows), _state(windows)
    cut = unbounded.shed(10, RETENTION)
    assert bounded.shed(10, RETENTION, latest=cut) == cut
    assert _values(bounded) == _values(unbounded)
