"""The detection engine's state (windows, baselines, watermarks) and how it is saved.

Saving writes changes only: the entries windows gained (one row per rule and batch), the rules'
prune cuts, the baselines changed since they were last written (not on every batch: nearly
every batch touches most of them), the sources that delivered, how far each source partition
of the event store was processed, and the watermarks. Bodies are
MessagePack; bodies written as JSON by earlier versions are still read.
"""

from __future__ import annotations

import sqlite3
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import TypeVar

import msgspec

from hubsight.detect.baseline import UserBaseline
from hubsight.detect.db import DetectDB
from hubsight.detect.windows import Entry, Window

_encode = msgspec.msgpack.Encoder().encode
_entry_ts = attrgetter("ts")

T = TypeVar("T")


def _decoder(type_: type[T]) -> Callable[[bytes | str], T]:
    from_json = msgspec.json.Decoder(type_).decode
    from_msgpack = msgspec.msgpack.Decoder(type_).decode

    def decode(body: bytes | str) -> T:
        # Both body types are maps: "{" opens a JSON one, never a MessagePack one.
        if isinstance(body, str) or body[:1] == b"{":
            return from_json(body)
        return from_msgpack(body)

    return decode


# A cut is narrowed until at most this many entries lie around it, which are then sorted.
_SORTED_AT_ONCE = 4096

# A source partition of the event store (log name, topic, partition) and the last event
# detection processed there: its received time (ms, as stored), offset and record index.
Partition = tuple[str, str, int]
Position = tuple[int, int, int]

_decode_batch = _decoder(dict[str, list[Entry]])
_decode_baseline = _decoder(UserBaseline)


@dataclass(frozen=True, slots=True)
class StateSize:
    """How much detection state is held: what its memory grows with."""

    windows: int
    entries: int
    baselines: int


class EngineState:
    """Windows, baselines and watermarks; what changed since the last save."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str], Window] = {}
        self.baselines: dict[str, UserBaseline] = {}
        self.sources: dict[tuple[str, str], float] = {}
        self.watermark = 0.0
        self.started: float | None = None
        self.pruned_at = 0.0
        self.baselines_pruned_at = 0.0
        # Windows that gained entries since the last save (they list themselves here).
        self.dirty_windows: dict[tuple[str, str], Window] = {}
        # Per rule, the time before which entries were pruned and are still on disk.
        self.cuts: dict[str, float] = {}
        self.dirty_baselines: dict[str, None] = {}
        self.baselines_saved_at = time.monotonic()
        self.dirty_sources: set[tuple[str, str]] = set()
        self.positions: dict[Partition, Position] = {}
        self.dirty_positions: set[Partition] = set()
        # Entries in all windows (kept up to date by the engine, recounted when pruned), and
        # the event time before which windows were cut to stay under their cap (``shed``).
        self.entries = 0
        self.shed_before = 0.0

    def size(self) -> StateSize:
        """The windows, their entries and the baselines held now."""
        return StateSize(len(self.windows), self.entries, len(self.baselines))

    def baselines_due(self, every: float | None) -> bool:
        """Whether the changed baselines are to be written now: ``every`` seconds since they
        last were, or now whatever the time (``None``)."""
        return every is None or time.monotonic() - self.baselines_saved_at >= every

    def saved(self, *, baselines: bool = True) -> None:
        """Drop the record of the changes ``save`` wrote, once they are committed (engines
        that keep nothing call it alone); the baselines' too when ``baselines``.

        Until then every change stays recorded: a save that failed (rolled back) is written
        again, with whatever came after it, by the next one.
        """
        for window in self.dirty_windows.values():
            window.added = ()
        self.cuts.clear()
        self.dirty_windows.clear()
        self.dirty_sources.clear()
        self.dirty_positions.clear()
        if baselines:
            self.dirty_baselines.clear()
            self.baselines_saved_at = time.monotonic()

    def prune(self, lateness: float, retention: Mapping[str, float], horizon: float) -> None:
        """Forget window entries and baseline values no rule can ask about any more.

        ``lateness`` and ``horizon`` (the baselines') are in seconds; ``retention`` says how long
        each rule keeps its windows' entries beyond the lateness.
        """
        self.pruned_at = self.watermark
        self._cut_windows(self.watermark - lateness, retention)
        # Baselines span 90 days: forgetting their oldest values once a day is plenty.
        if self.watermark - self.baselines_pruned_at < 86400.0:
            return
        self.baselines_pruned_at = self.watermark
        # Values are kept two latenesses beyond the horizon: late events, and rules that look
        # only at what has surely arrived (a lateness back), still find all they ask about.
        oldest = self.watermark - horizon - 2 * lateness
        for subject, baseline in list(self.baselines.items()):
            if baseline.prune(oldest):
                self.dirty_baselines[subject] = None
                # Networks and users come and go: one left with nothing is deleted (saving a
                # dirty subject that is gone deletes its row).
                if baseline.empty():
                    del self.baselines[subject]

    def shed(
        self, keep: int, retention: Mapping[str, float], *, latest: float | None = None
    ) -> float:
        """Drop the oldest window entries so that about ``keep`` remain; the event time before
        which events are too late for windows from now on (``shed_before``), never after
        ``latest`` when given.

        As if the lateness had shrunk: a rule keeps its ``retention`` (seconds) beyond that
        time, as ``prune`` keeps it beyond the lateness, so a role grant remembered for days is
        not dropped with an hour's sign-ins. Entries dropped ahead of the lateness would make a
        late event count against part of what it fell with: events that old skip windowed
        rules instead, as events later than the lateness do.

        That cut falls after ``latest`` when rules that remember for days (a user's device-code
        sign-ins, 90 days) hold most entries: their entries' times plus retention all lie ahead,
        so the cut did too, and every event was too late for every windowed rule until event
        time passed it, for good once those rules filled the cap. Then the cut is ``latest``
        and the rules retaining longest give up their oldest entries instead: each keeps its
        retention up to the longest span that leaves ``keep`` (``_capped``), so rules with short
        windows keep theirs whole. Only when the entries after ``latest`` alone are more than
        ``keep`` are those cut too, at the time that keeps the newest ``keep``.
        """
        if sum(map(len, self.windows.values())) <= keep:
            return self.shed_before
        cut = self._keeping(keep, retention)
        if latest is not None and cut > latest:
            cut, retention = self._capped(keep, retention, latest)
        cut = self.shed_before = max(self.shed_before, cut)
        self._cut_windows(cut, retention)
        return cut

    def _capped(
        self, keep: int, retention: Mapping[str, float], latest: float
    ) -> tuple[float, Mapping[str, float]]:
        # Entries older than ``latest`` less their rule's retention go whatever the cap; of the
        # rest, the newest ``keep`` stay: a rule keeps ``latest - newest`` of its retention at
        # most, where ``newest`` is the time of the keep-th newest entry left.
        self._cut_windows(latest, retention)
        if self.entries <= keep:
            return latest, retention
        newest = self._keeping(keep, {})
        if newest > latest:
            return newest, {}
        span = latest - newest
        return latest, {rule: min(keeps, span) for rule, keeps in retention.items()}

    def _keeping(self, keep: int, retention: Mapping[str, float]) -> float:
        # The ``keep``-th newest of every entry's time plus its rule's retention: the cut that
        # keeps ``keep`` entries (and any tying with the last). Windows are sorted, so how many
        # a cut keeps is a bisection per window; the cut is narrowed between ``low`` and
        # ``high``, following only the windows with entries in between (the others count the
        # same for any cut there), until few entries are left, and only those are sorted.
        # Sorting all 500,000 took 0.45 s under the engine's lock, with a list of them all.
        active: list[tuple[list[float], float, int, int]] = [
            (window.times, retention.get(wkey[0], 0.0), 0, len(window))
            for wkey, window in self.windows.items()
            if window
        ]
        # A second beyond every entry, beyond any rounding of time + retention.
        low = min(times[0] + keeps for times, keeps, _, _ in active) - 1.0
        high = max(times[-1] + keeps for times, keeps, _, _ in active) + 1.0
        # A cut at ``low`` keeps ``above`` >= keep entries, one at ``high`` ``below`` < keep;
        # each active window's entries from ``lo`` to ``hi`` lie in between.
        above, below = sum(len(times) for times, _, _, _ in active), 0
        while above - below > _SORTED_AT_ONCE:
            middle = (low + high) / 2
            if middle in (low, high):
                break  # as narrow as floats go: the entries left tie
            cuts = [bisect_left(times, middle - keeps, lo, hi) for times, keeps, lo, hi in active]
            pairs = list(zip(active, cuts, strict=True))
            count = below + sum(hi - cut for (_, _, _, hi), cut in pairs)
            if count >= keep:
                low, above = middle, count
                active = [(t, k, cut, hi) for (t, k, _, hi), cut in pairs if hi > cut]
            else:
                high, below = middle, count
                active = [(t, k, lo, cut) for (t, k, lo, _), cut in pairs if lo < cut]
        between = sorted(times[i] + keeps for times, keeps, lo, hi in active for i in range(lo, hi))
        return between[above - keep]

    def _cut_windows(self, at: float, retention: Mapping[str, float]) -> None:
        # Each rule's entries before ``at`` less its retention go; every window of a rule is
        # cut at the same time, so one DELETE per rule follows it when saved.
        for wkey, window in list(self.windows.items()):
            before = at - retention.get(wkey[0], 0.0)
            if window.prune(before):
                self.cuts[wkey[0]] = max(self.cuts.get(wkey[0], before), before)
            if not window:
                del self.windows[wkey]
        self.entries = sum(len(window) for window in self.windows.values())

    def copy_windows(self, source: str, target: str) -> None:
        """Give ``target`` (a rule id, or a shared window's) the windows of ``source``, entries
        and all (they never change: both hold the same), saved with the next batch."""
        for (wid, key), window in list(self.windows.items()):
            if wid != source or not window:
                continue
            wkey = (target, key)
            copy = self.windows[wkey] = Window(list(window), key=wkey, changed=self.dirty_windows)
            # Saved, and counted in ``entries``, as entries added by the next batch are.
            copy.added = list(copy)
            self.dirty_windows[wkey] = copy

    def save(self, conn: sqlite3.Connection, *, baselines: bool) -> None:
        """Write the changes in ``conn``'s transaction (the baselines' only when ``baselines``);
        call ``saved`` once it is committed."""
        conn.executemany(
            "DELETE FROM window_batches WHERE newest < ? AND rule_id = ?",
            [(cut, rule_id) for rule_id, cut in self.cuts.items()],
        )
        added: dict[str, dict[str, list[Entry]]] = {}
        for wkey, window in self.dirty_windows.items():
            if not window.added:
                continue
            batch = added.get(wkey[0])
            if batch is None:
                batch = added[wkey[0]] = {}
            batch[wkey[1]] = window.added
        conn.executemany(
            "INSERT INTO window_batches VALUES (?, ?, ?)",
            [
                (rule_id, max(map(_entry_ts, chain.from_iterable(batch.values()))), _encode(batch))
                for rule_id, batch in added.items()
            ],
        )
        if baselines:
            known = self.baselines
            conn.executemany(
                "INSERT OR REPLACE INTO baselines VALUES (?, ?)",
                [(s, _encode(known[s])) for s in self.dirty_baselines if s in known],
            )
            conn.executemany(
                "DELETE FROM baselines WHERE subject = ?",
                [(s,) for s in self.dirty_baselines if s not in known],
            )
        conn.executemany(
            "INSERT OR REPLACE INTO sources VALUES (?, ?, ?)",
            [(*k, self.sources[k]) for k in self.dirty_sources],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?, ?)",
            [(*k, *self.positions[k]) for k in self.dirty_positions],
        )
        meta = {
            "watermark": self.watermark,
            "started": self.started,
            "pruned": self.pruned_at,
            "shed": self.shed_before or None,
        }
        conn.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [(k, repr(v)) for k, v in meta.items() if v is not None],
        )

    def load(self, db: DetectDB) -> None:
        """Read the state ``save`` wrote."""
        grouped: dict[tuple[str, str], list[Entry]] = {}
        for row in db.rows("SELECT rule_id, body FROM window_batches"):
            for key, entries in _decode_batch(row["body"]).items():
                grouped.setdefault((row["rule_id"], key), []).extend(entries)
        for wkey, entries in grouped.items():
            self.windows[wkey] = Window(entries, key=wkey, changed=self.dirty_windows)
            self.entries += len(entries)
        for row in db.rows("SELECT subject, body FROM baselines"):
            self.baselines[row["subject"]] = _decode_baseline(row["body"])
        for row in db.rows("SELECT log_name, category, last_received FROM sources"):
            self.sources[(row["log_name"], row["category"])] = float(row["last_received"])
        for row in db.rows("SELECT * FROM positions"):
            self.positions[(row["log_name"], row["topic"], int(row["partition"]))] = (
                int(row["received_ms"]),
                int(row["offset"]),
                int(row["record_index"]),
            )
        for key, attr in (
            ("watermark", "watermark"),
            ("started", "started"),
            ("pruned", "pruned_at"),
            ("shed", "shed_before"),
        ):
            value = db.get_meta(key)
            if value is not None:
                setattr(self, attr, float(value))


def read_baseline(db: DetectDB, subject: str) -> UserBaseline:
    """The saved baseline of ``subject`` (empty when there is none)."""
    rows = db.rows("SELECT body FROM baselines WHERE subject = ?", (subject,))
    return _decode_baseline(rows[0]["body"]) if rows else UserBaseline()
