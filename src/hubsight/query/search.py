"""Running searches: scope, paging, limits and result shapes over the event store."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hubsight.errors import QueryError, StoreError
from hubsight.query.compiler import Compiled, CursorKey, ResultKind, Scope, compile_query
from hubsight.query.keys import QueryWarning
from hubsight.query.params import bind
from hubsight.query.parser import parse
from hubsight.query.timerange import TimeWindow, resolve_window
from hubsight.store.base import EventStore

DEFAULT_PAGE = 100
# InsightIDR shows the top 40 groups unless limit() asks for more.
DEFAULT_GROUPS = 40
_POSITION = ("log_set", "log_name", "source_topic", "source_partition", "source_offset")


@dataclass(frozen=True, kw_only=True)
class SearchLimits:
    """How long one search may run and how many rows it may return."""

    time_limit_s: float = 30.0
    result_cap: int = 10_000


@dataclass(frozen=True, kw_only=True)
class SearchRequest:
    """A query and its scope; ``last`` or ``start``/``end`` give the window in ``timezone``."""

    query: str
    last: str | None = None
    start: str | None = None
    end: str | None = None
    timezone: str = "UTC"
    log_sets: tuple[str, ...] = ()
    log_names: tuple[str, ...] = ()
    limit: int | None = None
    cursor: str | None = None
    # Unknown keys are an error instead of a lookup in the raw record with a warning.
    strict: bool = False


@dataclass(kw_only=True)
class SearchResult:
    """Events, a table or a time series, with what limited it."""

    kind: ResultKind
    window: TimeWindow
    events: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    next_cursor: str | None = None
    elapsed_ms: float = 0.0
    time_limit_hit: bool = False
    result_cap_hit: bool = False
    warnings: list[QueryWarning] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The shape the CLI and the API print: ``kind`` plus events, or columns and rows."""
        body: dict[str, Any] = {"kind": self.kind}
        if self.kind == "events":
            body["events"] = self.events
            body["next_cursor"] = self.next_cursor
        else:
            body["columns"] = self.columns
            body["rows"] = self.rows
        body["from"] = iso(self.window.start)
        body["to"] = iso(self.window.end)
        body["elapsed_ms"] = round(self.elapsed_ms, 1)
        body["time_limit_hit"] = self.time_limit_hit
        body["result_cap_hit"] = self.result_cap_hit
        body["warnings"] = [w.to_json() for w in self.warnings]
        return body


class _Cursor(msgspec.Struct, array_like=True):
    query: str
    start_ms: int
    end_ms: int
    key: tuple[int, str, str, int, int, int]


def iso(when: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a Z."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _to_ms(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _fingerprint(request: SearchRequest) -> str:
    scope = "\x00".join([request.query, *request.log_sets, "\x01", *request.log_names])
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def _decode_cursor(request: SearchRequest) -> _Cursor:
    text = request.cursor or ""
    try:
        padded = text + "=" * (-len(text) % 4)
        cursor = msgspec.json.decode(base64.urlsafe_b64decode(padded), type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise QueryError(
            "the cursor is not one this server issued", hint="start again without a cursor"
        ) from None
    if cursor.query != _fingerprint(request):
        raise QueryError(
            "the cursor belongs to another query or scope",
            hint="send the same query, log sets and log names as the first page",
        )
    return cursor


def _encode_cursor(request: SearchRequest, window: TimeWindow, row: dict[str, Any]) -> str:
    key = (
        _ch_ms(row["timestamp"]),
        row["log_name"],
        row["source_topic"],
        _or(row["source_partition"]),
        _or(row["source_offset"]),
        _or(row["record_index"]),
    )
    cursor = _Cursor(_fingerprint(request), _to_ms(window.start), _to_ms(window.end), key)
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode().rstrip("=")


def _or(value: int | None) -> int:
    return -1 if value is None else int(value)


def parse_ch_time(text: str) -> datetime:
    """A ClickHouse DateTime64 rendering ('2024-05-01 10:00:00.123') as an aware UTC time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ch_iso(text: str) -> str:
    """A ClickHouse ``DateTime64(3, 'UTC')`` rendering as ``iso`` writes it, by rearranging it.

    ClickHouse writes such a time always as 'YYYY-MM-DD hh:mm:ss.mmm' (years 1900-2299): the
    text needs no parsing, which took a third of shaping an events page.
    """
    return f"{text[:10]}T{text[11:]}Z"


def _ch_ms(text: str) -> int:
    return (datetime.fromisoformat(text) - _NAIVE_EPOCH) // _MS


_NAIVE_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - subtracted from ClickHouse's UTC text
_MS = timedelta(milliseconds=1)
_TIMES = frozenset({"timestamp", "azure_time", "enqueued_time", "received_time"})
_JSON_TEXT = frozenset({"modified_properties", "entities"})


def event_id(row: dict[str, Any]) -> str:
    """An opaque reference to one stored event (its log and sort key), for ``context``."""
    key = [row[name] for name in _POSITION]
    key += [_ch_ms(row["timestamp"]), row["record_index"]]
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def event_view(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as an event: set fields only, times in ISO 8601, ``raw`` as JSON."""
    event: dict[str, Any] = {"id": event_id(row)}
    for name, value in row.items():
        if value is None or value == "" or value == []:
            continue
        if name == "raw" and not row.get("raw_base64"):
            try:
                event[name] = msgspec.json.decode(value)
            except msgspec.DecodeError:
                event[name] = value
        elif name in _TIMES:
            event[name] = ch_iso(value)
        elif name in _JSON_TEXT:
            event[name] = msgspec.json.decode(value)
        else:
            event[name] = value
    return event


def _selected_view(row: dict[str, Any], names: list[str]) -> dict[str, Any]:
    event: dict[str, Any] = {"id": event_id(row), "timestamp": ch_iso(row["timestamp"])}
    for i, name in enumerate(names):
        event[name] = row[f"s{i}"]
    return event


def run(
    store: EventStore, compiled: Compiled, limits: SearchLimits
) -> tuple[list[dict[str, Any]], float, bool]:
    """Run compiled SQL under the time limit; rows, elapsed ms and whether the limit cut it."""
    seconds = max(limits.time_limit_s, 0.001)
    sql = (
        f"{compiled.sql} SETTINGS max_execution_time = {seconds:.3f}, "
        "timeout_overflow_mode = 'break', output_format_json_quote_denormals = 0"
    )
    began = time.perf_counter()
    try:
        rows = store.select(sql, bind(compiled.params))
    except StoreError as exc:
        raise QueryError(
            f"the search failed: {exc.message}",
            hint="check regular expressions (RE2 syntax: no look-around or back-references)",
        ) from exc
    elapsed = time.perf_counter() - began
    return rows, elapsed * 1000, elapsed >= seconds


def window_of(request: SearchRequest, now: datetime | None = None) -> TimeWindow:
    """The request's time window (a cursor's window wins, so pages stay stable)."""
    if request.cursor:
        cursor = _decode_cursor(request)
        return TimeWindow(_from_ms(cursor.start_ms), _from_ms(cursor.end_ms))
    window = resolve_window(
        now=now or datetime.now(UTC),
        last=request.last,
        start=request.start,
        end=request.end,
        tz_name=request.timezone,
    )
    # The store keeps milliseconds: a finer bound would shift buckets and cursors by a hair.
    return TimeWindow(_from_ms(_to_ms(window.start)), _from_ms(_to_ms(window.end)))


def searcher(
    store: EventStore, *, limit: int = 1000
) -> Callable[[str, datetime, datetime, tuple[str, ...]], SearchResult]:
    """Searches as custom detections run them: a query over a window and log sets, at most
    ``limit`` events."""

    def run(query: str, start: datetime, end: datetime, log_sets: tuple[str, ...]) -> SearchResult:
        request = SearchRequest(
            query=query, start=iso(start), end=iso(end), log_sets=log_sets, limit=limit
        )
        return search(store, request, now=end)

    return run


def search(
    store: EventStore,
    request: SearchRequest,
    limits: SearchLimits | None = None,
    *,
    now: datetime | None = None,
    page_size: int | None = None,
) -> SearchResult:
    """Parse, compile and run one search; raises ``QueryError`` (positioned when syntax).

    ``page_size`` overrides the query's ``limit()`` for events (export pages with it).
    """
    limits = limits or SearchLimits()
    query = parse(request.query)
    window = window_of(request, now)
    scope = Scope(
        start=window.start, end=window.end, log_sets=request.log_sets, log_names=request.log_names
    )
    cursor = None
    if request.cursor:
        key = _decode_cursor(request).key
        cursor = CursorKey(values=(_from_ms(key[0]), *key[1:]))
    is_events = query.timeslice is None and not query.groupby and query.calculate is None
    wanted = (page_size if is_events else None) or query.limit or request.limit
    wanted = wanted or (DEFAULT_PAGE if is_events else DEFAULT_GROUPS)
    shown = min(wanted, limits.result_cap)
    # Events and tables ask for one row more than they show to tell whether they were cut; a
    # series shows the top ``shown`` groups and folds the rest into "other".
    rows_asked = shown if query.timeslice is not None else shown + 1
    compiled = compile_query(query, scope, limit=rows_asked, cursor=cursor, strict=request.strict)
    rows, elapsed, timed_out = run(store, compiled, limits)
    result = SearchResult(
        kind=compiled.kind,
        window=window,
        elapsed_ms=elapsed,
        time_limit_hit=timed_out,
        warnings=compiled.warnings,
    )
    if compiled.kind == "events":
        more = len(rows) > shown
        rows = rows[:shown]
        result.result_cap_hit = more and wanted > limits.result_cap
        view = (lambda r: _selected_view(r, compiled.selected)) if compiled.selected else event_view
        result.events = [view(r) for r in rows]
        if more and rows:
            result.next_cursor = _encode_cursor(request, window, rows[-1])
        result.columns = compiled.selected
        return result
    result.columns = compiled.columns
    if compiled.kind == "table":
        result.result_cap_hit = len(rows) > shown and wanted > limits.result_cap
        result.rows = [list(r.values()) for r in rows[:shown]]
        return result
    result.rows, result.result_cap_hit = _series(rows, compiled, window, limits.result_cap)
    return result


OTHER = "other"


def _series(
    rows: list[dict[str, Any]], compiled: Compiled, window: TimeWindow, cap: int
) -> tuple[list[list[Any]], bool]:
    """Every bucket from the window's start to its end, each with every group shown.

    A bucket with no events counts zero (an average or a maximum of nothing is null). Groups
    come in the order of their totals, the events of groups past the limit last as "other".
    """
    width = timedelta(milliseconds=compiled.bucket_ms or 1)
    origin = _from_ms(compiled.origin_ms or 0)
    count = -(-(window.end - origin) // width)
    additive = compiled.columns[-1].startswith(("count", "unique", "bytes", "sum"))
    empty = 0 if additive else None
    if len(compiled.columns) == 2:
        values = {r["b"]: r["v"] for r in rows}
        out = [[iso(origin + width * b), values.get(b, empty)] for b in range(count)]
        return out[:cap], len(out) > cap
    keys = len(compiled.columns) - 2
    names: dict[int, list[Any]] = {}
    cells: dict[tuple[int, int], Any] = {}
    for row in rows:
        rank = row["r"]
        names.setdefault(rank, [row[f"g{i}"] if rank else OTHER for i in range(keys)])
        cells[row["b"], rank] = row["v"]
    ranks = sorted(names, key=lambda r: (r == 0, r))
    out = []
    for b in range(count):
        for rank in ranks:
            if (b, rank) in cells or not compiled.sparse:
                out.append([iso(origin + width * b), *names[rank], cells.get((b, rank), empty)])
    return out[:cap], len(out) > cap


def iter_events(
    store: EventStore, request: SearchRequest, limits: SearchLimits | None = None, page: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every event of an events search, page by page, never holding more than one page."""
    now = datetime.now(UTC)
    remaining = parse(request.query).limit
    current = request
    while remaining is None or remaining > 0:
        # Pages are sized here, so the query's own limit() is applied across pages instead.
        size = page if remaining is None else min(page, remaining)
        result = search(store, current, limits, now=now, page_size=size)
        if result.kind != "events":
            raise QueryError(
                "only event searches can be exported event by event",
                hint="export tables and time series as CSV or JSON of their rows",
            )
        yield from result.events
        if remaining is not None:
            remaining -= len(result.events)
        if result.next_cursor is None:
            return
        current = replace(current, cursor=result.next_cursor)
