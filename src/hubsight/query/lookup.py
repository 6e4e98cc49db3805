"""Short summaries of stored events named by their ids, in one query per log.

Alerts cite events by position; a page listing them shows what each event was (time, user,
address, operation, result, application) without loading the raw records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from hubsight.query.context import decode_event_id
from hubsight.query.params import Params, bind
from hubsight.query.search import event_id, iso, parse_ch_time
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

SUMMARY_FIELDS = (
    "user",
    "source_ip",
    "operation",
    "result",
    "application",
    "resource_id",
    "geoip_country_code",
)
_COLUMNS = (
    "timestamp, log_set, log_name, source_topic, source_partition, source_offset, record_index, "
    + ", ".join(SUMMARY_FIELDS)
)


def summaries(store: EventStore, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each stored event's summary by its id; ids of events no longer stored are left out."""
    wanted: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
    for one in set(ids):
        log_set, log_name, _topic, _partition, offset, ts_ms, _index = decode_event_id(one)
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)
        wanted[(log_set, log_name)].append((at, -1 if offset is None else offset))
    found: dict[str, dict[str, Any]] = {}
    for (log_set, log_name), keys in wanted.items():
        params = Params()
        time_type = "DateTime64(3, 'UTC')"
        lo = params.add(time_type, min(k[0] for k in keys))
        hi = params.add(time_type, max(k[0] for k in keys))
        offsets = params.add("Array(Int64)", sorted({k[1] for k in keys}))
        # The table is ordered by log set, log name and time: the time bounds keep the read to
        # the granules around the cited events; the offsets pick them out.
        sql = (
            f"SELECT {_COLUMNS} FROM {EVENTS_TABLE} "  # noqa: S608 - values are parameters
            f"WHERE log_set = {params.add('String', log_set)} "
            f"AND log_name = {params.add('String', log_name)} "
            f"AND timestamp >= {lo} AND timestamp <= {hi} "
            f"AND has({offsets}, ifNull(source_offset, -1))"
        )
        for row in store.select(sql, bind(params.values)):
            summary = {"timestamp": iso(parse_ch_time(row["timestamp"])), "log_name": log_name}
            summary |= {name: row[name] for name in SUMMARY_FIELDS if row[name] not in (None, "")}
            found[event_id(row)] = summary
    return {one: found[one] for one in ids if one in found}
