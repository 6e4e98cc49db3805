"""The events around one event, in the same log, in time order."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hubsight.errors import NotFoundError, QueryError
from hubsight.query.compiler import CURSOR_TYPES, SORT_KEY
from hubsight.query.params import Params, ParamValue, bind
from hubsight.query.search import event_view
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

_Key = tuple[str, str, str, int | None, int | None, int, int | None]


def decode_event_id(event_id: str) -> _Key:
    """The log and sort key an event id stands for; QueryError when it is not one."""
    try:
        padded = event_id + "=" * (-len(event_id) % 4)
        key: _Key = msgspec.json.decode(base64.urlsafe_b64decode(padded), type=_Key)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise QueryError(
            f"'{event_id}' is not an event id", hint="use the id of an event a search returned"
        ) from None
    return key


def context(
    store: EventStore, event_id: str, *, before: int = 10, after: int = 10
) -> dict[str, Any]:
    """``before`` events, the event itself and ``after`` events of its log, oldest first."""
    log_set, log_name, topic, partition, offset, ts_ms, index = decode_event_id(event_id)
    params = Params()
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)
    values: tuple[ParamValue, ...] = (
        when,
        log_name,
        topic,
        _or(partition),
        _or(offset),
        _or(index),
    )
    marks = [
        params.add(t, v, f"k{i}") for i, (t, v) in enumerate(zip(CURSOR_TYPES, values, strict=True))
    ]
    same_log = f"log_set = {params.add('String', log_set, 'log_set')} AND log_name = {marks[1]}"
    key = f"({', '.join(SORT_KEY)})"
    anchor = f"({', '.join(marks)})"

    def side(sign: str, direction: str, count: int) -> list[dict[str, Any]]:
        limit = params.add("UInt32", count, f"n_{direction}")
        sql = (
            f"SELECT * FROM {EVENTS_TABLE} WHERE {same_log} "  # noqa: S608 - values are parameters
            f"AND timestamp {sign}= {marks[0]} AND {key} {sign} {anchor} "
            f"ORDER BY {', '.join(k + ' ' + direction for k in SORT_KEY)} LIMIT {limit}"
        )
        return store.select(sql, bind(params.values))

    found = store.select(
        f"SELECT * FROM {EVENTS_TABLE} WHERE {same_log} AND timestamp = {marks[0]} "  # noqa: S608
        f"AND {key} = {anchor} LIMIT 1",
        bind(params.values),
    )
    if not found:
        raise NotFoundError("that event is no longer in the store", hint="search again")
    earlier = side("<", "DESC", before) if before > 0 else []
    later = side(">", "ASC", after) if after > 0 else []
    return {
        "before": [event_view(r) for r in reversed(earlier)],
        "event": event_view(found[0]),
        "after": [event_view(r) for r in later],
    }


def _or(value: int | None) -> int:
    return -1 if value is None else value
