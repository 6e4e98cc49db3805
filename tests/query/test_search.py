"""The search executor: scope, cursor paging while data arrives, limits, context, saved, export."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from hubsight.errors import NotFoundError, QueryError, QuerySyntaxError
from hubsight.parsing.event import Event, LogSet
from hubsight.query.compiler import Scope, compile_query
from hubsight.query.context import context
from hubsight.query.export import export
from hubsight.query.params import bind
from hubsight.query.parser import parse
from hubsight.query.saved import SavedScope, delete_saved, get_saved, list_saved, save
from hubsight.query.search import (
    SearchLimits,
    SearchRequest,
    ch_iso,
    event_id,
    iso,
    iter_events,
    parse_ch_time,
    search,
)
from hubsight.store.base import Offsets
from hubsight.store.embedded import EmbeddedStore
from hubsight.store.users import Account

from .dataset import ALERTS, BASE, NOW, ROWS, SIGNIN, WINDOW, newest
from tests.support import PassingStore, Window

# One late log sorts after the Azure logs at equal times, one before them.
LATE = "Aa Late Arrivals"
LATER = "Zz Late Arrivals"
ALICE = Account("alice", "analyst")


def _request(query: str, **changes: Any) -> SearchRequest:
    return replace(SearchRequest(query=query, start=WINDOW[0], end=WINDOW[1]), **changes)


def _ids(result: Any) -> list[int]:
    return [e["source_offset"] for e in result.events]


def test_log_set_and_log_name_scope(store: EmbeddedStore) -> None:
    by_set = search(store, _request("where()", log_sets=("Third Party Alerts",)), now=NOW)
    by_name = search(store, _request("where()", log_names=(SIGNIN, ALERTS)), now=NOW)
    assert _ids(by_set) == newest(lambda r: r.log_name == ALERTS)
    assert _ids(by_name) == newest(lambda r: r.log_name in {SIGNIN, ALERTS})


def test_relative_window_ends_now(store: EmbeddedStore) -> None:
    result = search(store, SearchRequest(query="where()", last="last 5 hours"), now=NOW)
    assert _ids(result) == newest(lambda r: r.ts >= NOW - timedelta(hours=5))
    assert result.window.end == NOW


def test_events_carry_normalized_fields_and_raw_json(store: EmbeddedStore) -> None:
    event = search(store, _request("where(user=alice@corp.com) limit(1)"), now=NOW).events[0]
    row = next(r for r in ROWS if r.id == event["source_offset"])
    assert event["raw"] == row.raw
    assert event["user"] == "alice@corp.com"
    assert event["timestamp"] == row.ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert "geoip_country_name" not in event  # unset fields are left out


def test_select_returns_the_chosen_keys_under_their_aliases(store: EmbeddedStore) -> None:
    result = search(store, _request("select(user AS who, properties.attempt) limit(2)"), now=NOW)
    assert [sorted(e) for e in result.events] == [
        ["id", "properties.attempt", "timestamp", "who"]
    ] * 2
    assert result.events[0]["properties.attempt"] == "59"


def test_result_cap_is_reported(store: EmbeddedStore) -> None:
    limits = SearchLimits(result_cap=5)
    events = search(store, _request("where() limit(50)"), limits, now=NOW)
    groups = search(store, _request("groupby(source_ip) limit(50)"), limits, now=NOW)
    assert (len(events.events), events.result_cap_hit) == (5, True)
    assert (len(groups.rows), groups.result_cap_hit) == (5, True)
    within = search(store, _request("groupby(user)"), limits, now=NOW)
    assert (len(within.rows), within.result_cap_hit) == (4, False)


class _SlowStore(PassingStore):
    """A store that takes 50 ms per query, to trip the time limit deterministically."""

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        time.sleep(0.05)
        return self.inner.select(sql, params)

    def write(self, events: Sequence[Event]) -> None:
        raise AssertionError("searches never write")

    def stored_offsets(self, log_name: str) -> Offsets:
        raise AssertionError("searches never read offsets")

    def close(self) -> None:
        raise AssertionError("searches never close the store")


def test_time_limit_is_reported(store: EmbeddedStore) -> None:
    slow = _SlowStore(store)
    hit = search(slow, _request("where()"), SearchLimits(time_limit_s=0.01), now=NOW)
    clear = search(slow, _request("where()"), SearchLimits(time_limit_s=30), now=NOW)
    assert (hit.time_limit_hit, clear.time_limit_hit) == (True, False)


def test_query_errors_surface_as_query_errors(store: EmbeddedStore) -> None:
    with pytest.raises(QuerySyntaxError):
        search(store, replace(_request("where(usr=x)"), strict=True), now=NOW)
    # Python accepts the look-ahead, RE2 does not: the engine's refusal becomes a QueryError.
    with pytest.raises(QueryError, match="the search failed") as caught:
        search(store, _request("where(/a(?=b)/)"), now=NOW)
    assert "RE2" in caught.value.hint


def test_cursor_pages_are_stable_while_events_arrive(store: EmbeddedStore) -> None:
    expected = newest(lambda r: r.log_name == SIGNIN)
    request = _request("where()", log_names=(SIGNIN, LATE, LATER), limit=7)
    first = search(store, request, now=NOW)
    seen = _ids(first)
    # New events arrive after the first page: newer ones, and ones tied with a listed event.
    tied = next(r for r in ROWS if r.id == seen[-1])
    late = [
        Event(
            timestamp=at,
            log_set=LogSet.UNPARSED_DATA,
            log_name=name,
            raw=msgspec.Raw(b'{"late": true}'),
            source_offset=1000 + i,
        )
        for i, (name, at) in enumerate(
            [(LATE, NOW - timedelta(minutes=1)), (LATE, tied.ts), (LATE, tied.ts), (LATER, tied.ts)]
        )
    ]
    store.write(late)
    cursor = first.next_cursor
    pages = 1
    while cursor:
        page = search(store, replace(request, cursor=cursor), now=NOW + timedelta(hours=1))
        seen += _ids(page)
        cursor = page.next_cursor
        pages += 1
    # Only the late events that sort after the last listed one show up on later pages.
    late_in_window = [1002, 1001]
    assert [i for i in seen if i < 1000] == expected
    assert [i for i in seen if i >= 1000] == late_in_window
    assert len(seen) == len(set(seen))
    assert pages == -(-(len(expected) + 2) // 7)


def test_a_cursor_from_another_query_is_refused(store: EmbeddedStore) -> None:
    cursor = search(store, _request("where()", limit=3), now=NOW).next_cursor
    with pytest.raises(QueryError, match="another query"):
        search(store, _request("where(user)", limit=3, cursor=cursor), now=NOW)
    with pytest.raises(QueryError, match="not one this server issued"):
        search(store, _request("where()", cursor="garbage!"), now=NOW)


def test_context_lists_neighbours_in_the_same_log(store: EmbeddedStore) -> None:
    target = next(r for r in ROWS if r.id == 21 and r.log_name == SIGNIN)
    found = search(store, _request("where(properties.attempt = 21)"), now=NOW).events[0]
    around = context(store, found["id"], before=2, after=3)
    same_log = sorted((r for r in ROWS if r.log_name == target.log_name), key=lambda r: r.ts)
    at = [r.id for r in same_log].index(21)
    assert around["event"]["source_offset"] == 21
    assert [e["source_offset"] for e in around["before"]] == [r.id for r in same_log[at - 2 : at]]
    assert [e["source_offset"] for e in around["after"]] == [
        r.id for r in same_log[at + 1 : at + 4]
    ]
    with pytest.raises(QueryError, match="not an event id"):
        context(store, "nonsense")


def test_saved_queries_round_trip(store: EmbeddedStore) -> None:
    scope = SavedScope(log_sets=["Ingress Authentication"], last="24h")
    first = save(
        store, ALICE, name="failed logins", query="where(result ISTARTS-WITH failed)", scope=scope
    )
    assert get_saved(store, first.id, ALICE).scope == scope
    updated = save(
        store, ALICE, name="failed", query="where(result!=SUCCESS)", scope=scope, query_id=first.id
    )
    other = save(
        store, ALICE, name="admins", query="where(user CONTAINS admin)", scope=SavedScope()
    )
    assert (updated.name, updated.query, updated.created_at, updated.owner) == (
        "failed",
        "where(result!=SUCCESS)",
        first.created_at,
        "alice",
    )
    assert [s.name for s in list_saved(store, ALICE)] == ["admins", "failed"]
    assert delete_saved(store, other.id, ALICE).name == "admins"
    assert [s.id for s in list_saved(store, ALICE)] == [first.id]
    with pytest.raises(NotFoundError):
        get_saved(store, other.id, ALICE)
    with pytest.raises(QuerySyntaxError):
        save(store, ALICE, name="bad", query="where(user=)", scope=SavedScope())


def test_json_export_streams_every_event(store: EmbeddedStore) -> None:
    request = _request("where(result!=SUCCESS)", log_names=(SIGNIN,))
    chunks = list(export(store, request, "json"))
    expected = newest(lambda r: r.result != "SUCCESS" and r.log_name == SIGNIN)
    assert len(chunks) == len(expected) + 2  # "[", one chunk per event, "]"
    assert [e["source_offset"] for e in json.loads("".join(chunks))] == expected


def test_csv_export_of_events_and_of_a_table(store: EmbeddedStore) -> None:
    events = list(csv.reader(io.StringIO("".join(export(store, _request("alice"), "csv")))))
    assert events[0] == ["timestamp", "log_set", "log_name", "user", "result", "source_ip", "raw"]
    assert len(events) == 1 + len(newest(lambda r: "alice" in r.raw_text))
    assert json.loads(events[1][6])["properties"]["userPrincipalName"] == "alice@corp.com"
    table = list(
        csv.reader(io.StringIO("".join(export(store, _request("groupby(result)"), "csv"))))
    )
    assert table[0] == ["result", "count"]
    assert sum(int(n) for _, n in table[1:]) == len(ROWS)


def test_export_honours_the_query_limit(store: EmbeddedStore) -> None:
    chunks = list(export(store, _request("where() limit(3)"), "json"))
    assert len(json.loads("".join(chunks))) == 3


def test_base_is_inside_the_window() -> None:
    assert WINDOW[0] < BASE.isoformat() < WINDOW[1]


def test_relative_bucket_counts_are_exact_with_a_sub_millisecond_now(store: EmbeddedStore) -> None:
    now = NOW + timedelta(microseconds=123_456)
    result = search(store, SearchRequest(query="timeslice(2)", last="2h"), now=now)
    assert len(result.rows) == 2
    assert result.window.end == NOW + timedelta(milliseconds=123)


@pytest.mark.parametrize("query", ["alice", '"alice@corp.com"'])
def test_keyword_search_is_served_by_the_full_text_index(store: EmbeddedStore, query: str) -> None:
    scope = Scope(start=BASE, end=NOW)
    compiled = compile_query(parse(query), scope, limit=10)
    plan = store.select(f"EXPLAIN indexes = 1 {compiled.sql}", bind(compiled.params))
    text = "\n".join(str(v) for row in plan for v in row.values())
    assert "raw_tokens" in text


@pytest.mark.parametrize("query", ['where(user = "alice@corp.com")', "alice sort(asc)"])
def test_an_events_page_is_cut_by_time_as_it_is_read(store: EmbeddedStore, query: str) -> None:
    # The page's one query is only as fast as the hand-written one while ClickHouse filters by
    # the timestamp as it reads (top-N) and reads the page's rows alone for the other columns.
    compiled = compile_query(parse(query), Scope(start=BASE, end=NOW), limit=101)
    plan = store.select(f"EXPLAIN {compiled.sql}", bind(compiled.params))
    text = "\n".join(str(v) for row in plan for v in row.values())
    assert "__topKFilter(timestamp)" in text
    assert "LazilyReadFromMergeTree" in text


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_paging_through_every_event_in_either_order(store: EmbeddedStore, order: str) -> None:
    request = _request(f"where(log_name = {SIGNIN!r}) sort({order})")
    seen = [e["source_offset"] for e in iter_events(store, request, page=7)]
    expected = newest(lambda r: r.log_name == SIGNIN)
    assert seen == (expected[::-1] if order == "asc" else expected)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pages_split_inside_a_run_of_tied_times(store: EmbeddedStore, order: str) -> None:
    # ClickHouse cuts the page by time alone as it reads: events tied with the page's last one
    # must all be weighed by the whole sort key, on this page and the next, none lost or listed
    # twice.
    day = 1 if order == "asc" else 2  # a day each: the store is shared by the module
    at = datetime(2025, 6, day, tzinfo=UTC)
    times = [at, at, *[at + timedelta(seconds=1)] * 5, at + timedelta(seconds=2)]
    tied = [
        Event(
            timestamp=when,
            log_set=LogSet.UNPARSED_DATA,
            log_name=(LATE, LATER)[i % 2],
            raw=msgspec.Raw(b'{"tied": true}'),
            source_topic="ties",
            source_offset=2000 + (i * 5) % 8,
        )
        for i, when in enumerate(times)
    ]
    store.write(tied)
    key = [(e.timestamp, e.log_name, e.source_offset or 0) for e in tied]
    expected = [offset for _, _, offset in sorted(key, reverse=order == "desc")]
    window: Window = {"start": at.isoformat(), "end": (at + timedelta(days=1)).isoformat()}
    request = replace(_request(f"where(tied) sort({order})"), **window)
    assert [e["source_offset"] for e in iter_events(store, request, page=3)] == expected
    first = search(store, replace(request, limit=4), now=NOW)
    assert _ids(first) == expected[:4]


@pytest.mark.parametrize(
    "when", ["1900-01-01 00:00:00.000", "1969-12-31 23:59:59.999", "2299-12-31 23:59:59.999"]
)
def test_times_are_shown_as_clickhouse_renders_them(store: EmbeddedStore, when: str) -> None:
    # Event pages rearrange ClickHouse's text instead of parsing it: it must say the same.
    (row,) = store.select(
        "SELECT toDateTime64({t:String}, 3, 'UTC') AS timestamp, 'log' AS log_set, "
        "'name' AS log_name, 't' AS source_topic, 0 AS source_partition, 1 AS source_offset, "
        "2 AS record_index",
        {"t": when},
    )
    at = parse_ch_time(row["timestamp"])
    assert ch_iso(row["timestamp"]) == iso(at)
    ms = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    key = ["log", "name", "t", 0, 1, ms, 2]
    assert event_id(row) == base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")
