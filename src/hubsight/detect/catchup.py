"""Detection catching up: reading from the event store what was stored beyond its positions.

A collector stores a batch, commits its offsets, then hands the batch to detection; so a batch
detection failed on, or did not save before the process died, is never delivered again. The
engine saves, with each batch's alerts and windows, how far it processed each source partition
(``DetectionEngine.positions``). At start, and after a failure before the next batch, the
events of each collected log stored since then are read back in the order they were received,
a page at a time, and processed like live ones; the engine skips those it already processed.

Where a log's reading starts: the latest received time among its partitions' positions. A
collector stores a log's batches in the order it received them and detection processes them in
that order, so everything received earlier was processed; events received in that same
millisecond are told apart by their partition's offset and record index. A log without any
position (a new source, or the first start of an install that kept none) is read from when
the engine began keeping positions. Events with no received time or no offset name no place
and are never read again; events retention deleted before they were read are gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hubsight.detect.engine import covered, position_of
from hubsight.detect.replay import event_of_row
from hubsight.detect.state import Partition, Position
from hubsight.parsing.event import Event
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

log = logging.getLogger(__name__)

# Events per read: a page of the collector's 4.8 KB sign-ins is ~25 MB in Python.
PAGE = 5_000

# The order the collector received a log's events in, and the key a page starts after.
_ORDER = "received_time, source_topic, source_partition, source_offset, record_index"
_BEYOND = (
    f"SELECT * FROM {EVENTS_TABLE} "  # noqa: S608 - our own table and columns
    "WHERE log_name = {log_name:String} AND source_offset IS NOT NULL "
    "AND received_time IS NOT NULL AND record_index IS NOT NULL "
    f"AND ({_ORDER}) > ({{received:DateTime64(3, 'UTC')}}, {{topic:String}}, "
    "{partition:Int64}, {offset:Int64}, {index:Int64}) "
    f"ORDER BY {_ORDER} LIMIT {{page:UInt32}}"
)
# What a catch-up reads (rows naming a place, as ``_BEYOND`` selects them).
_COUNT = (
    f"SELECT count() AS n FROM {EVENTS_TABLE} "  # noqa: S608 - our own table and columns
    "WHERE log_name = {log_name:String} AND source_offset IS NOT NULL "
    "AND source_topic IS NOT NULL AND source_partition IS NOT NULL "
    "AND received_time >= {received:DateTime64(3, 'UTC')} AND record_index IS NOT NULL"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class CaughtUp:
    """What one catch-up read and how long it took."""

    # Events read back from the store, per log name (those processed already included).
    read: dict[str, int] = field(default_factory=dict)
    # Of those, the ones processed before (received in the millisecond reading started from).
    skipped: int = 0
    seconds: float = 0.0
    # The last event read in each partition: live batches stored before the read ended hold
    # nothing beyond it that was not read (``Detection`` drops what they repeat).
    read_to: dict[Partition, Position] = field(default_factory=dict)

    @property
    def events(self) -> int:
        """Events read back in all."""
        return sum(self.read.values())


def start_of(log_name: str, positions: Mapping[Partition, Position], since: int) -> int:
    """The received time (ms) from which ``log_name``'s stored events are read again."""
    held = [at[0] for (name, _, _), at in positions.items() if name == log_name]
    return max(held, default=since)


def stored_beyond(
    store: EventStore, log_name: str, received_ms: int, *, page: int = PAGE
) -> Iterator[list[Event]]:
    """``log_name``'s stored events received at or after ``received_ms``, in the order they
    were received, ``page`` at a time."""
    params: dict[str, object] = {
        "log_name": log_name,
        "received": _text(received_ms),
        # Before any event of that millisecond: names, partitions and offsets are never less.
        "topic": "",
        "partition": -1,
        "offset": -1,
        "index": -1,
        "page": page,
    }
    while True:
        rows = store.select(_BEYOND, params)
        if rows:
            yield [event_of_row(row) for row in rows]
        if len(rows) < page:
            return
        last = rows[-1]
        params.update(
            received=last["received_time"],
            topic=last["source_topic"],
            partition=last["source_partition"],
            offset=last["source_offset"],
            index=last["record_index"],
        )


def count_beyond(
    log_names: Iterable[str],
    store: EventStore,
    positions: Mapping[Partition, Position],
    since: int,
) -> dict[str, int]:
    """Per log name, how many stored events a catch-up from ``positions`` processes: what it
    reads less what it skips, processed already."""
    counts = {}
    for name in sorted(set(log_names)):
        sql, params = _count_fresh(name, start_of(name, positions, since), positions)
        counts[name] = int(store.select(sql, params)[0]["n"])
    return counts


def _count_fresh(
    log_name: str, start: int, positions: Mapping[Partition, Position]
) -> tuple[str, dict[str, object]]:
    """The query counting what a catch-up of ``log_name`` from ``start`` has to process.

    Reading starts from the latest millisecond of the log's positions, so only events of that
    millisecond can have been processed: those of a partition whose position is there, at or
    before its place (``covered``). A message's records share their received time, so these
    may be hundreds, all processed: counted, they would be shown as waiting all along while
    reading back fails.
    """
    params: dict[str, object] = {"log_name": log_name, "received": _text(start)}
    seen = []
    for n, ((name, topic, partition), (ms, offset, index)) in enumerate(positions.items()):
        if name == log_name and ms == start:
            seen.append(
                f"(source_topic = {{t{n}:String}} AND source_partition = {{p{n}:Int64}} "
                f"AND (source_offset, record_index) <= ({{o{n}:Int64}}, {{i{n}:Int64}}))"
            )
            params |= {f"t{n}": topic, f"p{n}": partition, f"o{n}": offset, f"i{n}": index}
    if not seen:
        return _COUNT, params
    processed = " OR ".join(seen)
    return (
        f"{_COUNT} AND NOT (received_time = {{received:DateTime64(3, 'UTC')}} AND ({processed}))",
        params,
    )


def catch_up(
    log_names: Iterable[str],
    store: EventStore,
    positions: Mapping[Partition, Position],
    since: int,
    process: Callable[[list[Event]], object],
    *,
    page: int = PAGE,
    progress: Callable[[str, int], object] | None = None,
) -> CaughtUp:
    """Hand ``process`` every event of ``log_names`` stored beyond ``positions``, in pages;
    ``progress`` is told each page's log name and how many of its events were processed (those
    processed before not counted, as ``count_beyond`` does not count them).

    A failing read or ``process`` raises: what was processed before stays processed (the engine
    moved its positions), and the next catch-up reads on from there.
    """
    started = time.monotonic()
    done = CaughtUp()
    for log_name in sorted(set(log_names)):
        start = start_of(log_name, positions, since)
        for events in stored_beyond(store, log_name, start, page=page):
            fresh = []
            for event in events:
                at = position_of(event)
                if at is None:
                    continue  # not selected: the read asks for a place
                held = positions.get(at[0])
                if held is not None and covered(at[1], held):
                    done.skipped += 1
                else:
                    fresh.append(event)
                done.read_to[at[0]] = at[1]
            if fresh:
                process(fresh)
            done.read[log_name] = done.read.get(log_name, 0) + len(events)
            if progress is not None:
                progress(log_name, len(fresh))
    done.seconds = time.monotonic() - started
    return done


def _text(ms: int) -> str:
    """A time in ms as a ClickHouse DateTime64(3) parameter."""
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
