"""Events for backtests: parsed from files of Azure records, or read back from the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from hubsight.errors import ConfigError
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.sources.base import Message
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

BATCH = 5000
_ENVELOPE_LINE = b'{"records"'
_DATETIME_FIELDS = ("timestamp", "azure_time", "enqueued_time", "received_time")
_RAW_FIELDS = ("raw", "modified_properties", "entities")
_EVENT_FIELDS = frozenset(f.name for f in msgspec.structs.fields(Event))


def file_messages(path: Path, received: datetime) -> Iterator[Message]:
    """The messages of a file: one per line when it holds one Event Hub body per line."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="give files of Azure records or Event Hub message bodies",
        ) from exc
    lines = body.splitlines()
    if len(lines) > 1 and all(line.startswith(_ENVELOPE_LINE) for line in lines if line.strip()):
        for number, line in enumerate(lines):
            if line.strip():
                yield Message(
                    topic=str(path), partition=0, offset=number, value=line, received_time=received
                )
        return
    yield Message(topic=str(path), partition=0, offset=0, value=body, received_time=received)


def events_from_files(parser: MessageParser, paths: list[Path]) -> Iterator[list[Event]]:
    """Parse ``paths`` as ``hubsight parse`` does; batches of events in file order."""
    received = datetime.now(UTC)
    batch: list[Event] = []
    for path in paths:
        for message in file_messages(path, received):
            batch.extend(parser.parse(message))
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def events_from_store(
    store: EventStore, start: datetime, end: datetime, *, step: timedelta = timedelta(hours=1)
) -> Iterator[list[Event]]:
    """Stored events with ``start <= timestamp < end`` in event-time order, an hour at a time."""
    if end <= start:
        raise ConfigError(
            f"--from {start.isoformat()} is not before --to {end.isoformat()}",
            hint="give the earlier time to --from",
        )
    sql = (
        f"SELECT * FROM {EVENTS_TABLE} WHERE timestamp >= {{lo:DateTime64(3, 'UTC')}} "  # noqa: S608
        "AND timestamp < {hi:DateTime64(3, 'UTC')} AND log_set != {unparsed:String} "
        "ORDER BY timestamp, log_name, source_topic, source_partition, source_offset, record_index"
    )
    lo = start
    while lo < end:
        hi = min(lo + step, end)
        rows = store.select(
            sql,
            {
                "lo": lo.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                "hi": hi.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                "unparsed": str(LogSet.UNPARSED_DATA),
            },
        )
        if rows:
            yield [event_of_row(row) for row in rows]
        lo = hi


def event_of_row(row: dict[str, Any]) -> Event:
    """The ``Event`` of a stored row (ClickHouse's empty strings are absent values)."""
    fields: dict[str, Any] = {}
    for name, value in row.items():
        if name not in _EVENT_FIELDS or value == "" or value is None or value == []:
            continue
        if name in _DATETIME_FIELDS:
            fields[name] = _utc(value)
        elif name in _RAW_FIELDS:
            fields[name] = msgspec.Raw(value.encode() if isinstance(value, str) else value)
        else:
            fields[name] = value
    fields.setdefault("raw", msgspec.Raw(b"{}"))
    fields["log_set"] = LogSet(fields["log_set"])
    return Event(**fields)


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)
