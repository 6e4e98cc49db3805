"""Event-time windows: time-ordered entries per rule and key, re-checked when late events land.

A window keeps the events a rule counted, sorted by event time. Adding an entry that is already
present (same event reference) is a no-op, so replaying a batch after a restart cannot count an
event twice. ``crossings`` answers "which sliding windows that contain this entry now reach the
threshold": for an in-order event that is only the window ending at it; for a late event it is
also every later window it falls into, which is what makes results independent of arrival order.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator

import msgspec

from hubsight.detect.base import EventRef

# Memory one entry costs with its share of its window: counted object by object, each once
# (README, "Memory": the entry 40, its reference 72, the reference's time 48 and offset 28, the
# time as a float 24, two list slots 16, its value unless shared; tracemalloc over 14,501
# entries gave 223). What ``max_window_entries`` holds, and what ``bench/soak.py`` estimates
# the windows from.
ENTRY_BYTES = 240


# Not tracked by the cyclic garbage collector (atoms and an EventRef only): see EventRef.
class Entry(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One counted event: its time (epoch seconds), the value a rule counts, its reference."""

    ts: float
    value: str
    ref: EventRef


class Window:
    """Entries of one rule and key, ordered by event time."""

    __slots__ = ("_changed", "_entries", "_key", "_times", "added", "memo")

    def __init__(
        self,
        entries: list[Entry] | None = None,
        *,
        key: tuple[str, str] = ("", ""),
        changed: dict[tuple[str, str], Window] | None = None,
    ) -> None:
        self._entries: list[Entry] = sorted(entries or [], key=_order)
        self._times: list[float] = [e.ts for e in self._entries]
        # Entries added since the last save, so that saving writes only them; whoever saves
        # the window empties it. The empty tuple when there are none: most windows, between
        # saves, and a list for each cost 56 bytes a window (a third of the entries' count).
        self.added: list[Entry] | tuple[()] = ()
        # Where the window lists itself under ``key`` when it gains its first unsaved entry,
        # so that saving visits only the windows that changed.
        self._changed = changed
        self._key = key
        # What a rule keeps beside the entries to answer without reading them all (running
        # counts); never saved, and dropped when entries are pruned: the rule rebuilds it.
        self.memo: object | None = None

    def add(self, entry: Entry) -> bool:
        """Insert ``entry`` in time order; False (and no change) when it is already there."""
        times = self._times
        if times and entry.ts <= times[-1]:
            lo = bisect_left(times, entry.ts)
            hi = bisect_right(times, entry.ts, lo)
            for existing in self._entries[lo:hi]:
                if existing.ref == entry.ref and existing.value == entry.value:
                    return False
            times.insert(hi, entry.ts)
            self._entries.insert(hi, entry)
        else:
            # Most events arrive in order: nothing to search.
            times.append(entry.ts)
            self._entries.append(entry)
        if self.added:
            self.added.append(entry)
        else:
            self.added = [entry]
            if self._changed is not None:
                self._changed[self._key] = self
        return True

    def count_between(self, start: float, end: float) -> int:
        """How many entries have ``start <= ts <= end``."""
        return bisect_right(self._times, end) - bisect_left(self._times, start)

    @property
    def times(self) -> list[float]:
        """The entries' times, in order (the window's own list: read, never change it)."""
        return self._times

    def between(self, start: float, end: float) -> list[Entry]:
        """Entries with ``start <= ts <= end``."""
        return self._entries[bisect_left(self._times, start) : bisect_right(self._times, end)]

    def between_open(self, start: float, stop: float) -> list[Entry]:
        """Entries with ``start <= ts < stop``."""
        return self._entries[bisect_left(self._times, start) : bisect_left(self._times, stop)]

    def head(self, start: float, end: float, count: int) -> list[Entry]:
        """The earliest ``count`` entries with ``start <= ts <= end``, and any tying with the last.

        Entries at one time are kept in arrival order, so the ones tying with the last are all
        returned: whoever wants the earliest by another order among them can choose.
        """
        times = self._times
        lo, hi = bisect_left(times, start), bisect_right(times, end)
        if hi - lo > count > 0:
            hi = bisect_right(times, times[lo + count - 1], lo + count, hi)
        return self._entries[lo:hi]

    def prune(self, before: float) -> bool:
        """Drop entries older than ``before`` (unsaved ones too); True when any was dropped."""
        cut = bisect_left(self._times, before)
        if cut:
            self.memo = None
            del self._entries[:cut]
            del self._times[:cut]
            self.added = [e for e in self.added if e.ts >= before] or ()
        return cut > 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)


def _order(entry: Entry) -> float:
    return entry.ts


def crossings(
    window: Window,
    new: Entry,
    length: float,
    threshold: int,
    *,
    distinct: bool = False,
    counted: Callable[[Entry], bool] | None = None,
) -> list[list[Entry]]:
    """Every window of ``length`` seconds ending at an entry, containing ``new``, at threshold.

    A window counts its entries (or their distinct values when ``distinct``), only those for which
    ``counted`` holds when it is given. Each crossing is returned as the entries it counted.
    """
    found: list[list[Entry]] = []
    for end in window.between(new.ts, new.ts + length):
        if counted is not None and not counted(end):
            continue
        span = window.between(end.ts - length, end.ts)
        if counted is not None:
            span = [e for e in span if counted(e)]
        size = len({e.value for e in span}) if distinct else len(span)
        if size >= threshold:
            found.append(span)
    return found
