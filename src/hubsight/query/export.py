"""Search results as CSV or JSON, produced chunk by chunk so nothing is built in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Literal

import msgspec

from hubsight.query.csv_cells import csv_row
from hubsight.query.search import SearchLimits, SearchRequest, iter_events, search
from hubsight.store.base import EventStore

ExportFormat = Literal["csv", "json"]
_encoder = msgspec.json.Encoder()


def export(
    store: EventStore,
    request: SearchRequest,
    fmt: ExportFormat,
    limits: SearchLimits | None = None,
    *,
    columns: list[str] | None = None,
) -> Iterator[str]:
    """The results of ``request`` as CSV lines or a JSON array, one piece at a time.

    Event searches are paged through the store; tables and time series are already bounded
    by the result cap. CSV of events has ``columns`` (default: timestamp, log set and name,
    user, result, source IP and raw).
    """
    first = search(store, replace(request, limit=1), limits)
    if first.kind != "events":
        result = search(store, request, limits)
        if fmt == "csv":
            yield csv_row(result.columns)
            for row in result.rows:
                yield csv_row(row)
            return
        yield _encoder.encode(result.to_json()).decode()
        return
    events = iter_events(store, request, limits)
    if fmt == "json":
        yield "["
        for i, event in enumerate(events):
            yield ("," if i else "") + _encoder.encode(event).decode()
        yield "]\n"
        return
    names = columns or ["timestamp", "log_set", "log_name", "user", "result", "source_ip", "raw"]
    yield csv_row(names)
    for event in events:
        yield csv_row([event.get(n, "") for n in names])
