"""``hubsight search``: run one LEQL query over the event store and print the result."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import msgspec

from hubsight.cli.local_api import LocalApi
from hubsight.cli.options import store_settings
from hubsight.query.csv_cells import csv_row
from hubsight.query.keys import QueryWarning
from hubsight.query.search import SearchLimits, SearchRequest, SearchResult, search
from hubsight.query.timerange import TimeWindow
from hubsight.service import is_running
from hubsight.store.backends import open_store

_EVENT_COLUMNS = ["timestamp", "log_set", "log_name", "user", "result", "source_ip"]


def _document(result: SearchResult) -> dict[str, Any]:
    if result.kind == "events":
        document: dict[str, Any] = {"kind": "events", "events": result.events}
    else:
        document = {"kind": result.kind, "columns": result.columns, "rows": result.rows}
    if result.warnings:
        document["warnings"] = [w.to_json() for w in result.warnings]
    return document


def _table(result: SearchResult) -> tuple[list[str], list[list[Any]]]:
    if result.kind != "events":
        return result.columns, result.rows
    names = ["timestamp", *result.columns] if result.columns else _EVENT_COLUMNS
    return names, [[event.get(n, "") for n in names] for event in result.events]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return msgspec.json.encode(value).decode()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _render_table(names: list[str], rows: list[list[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _render_csv(names: list[str], rows: list[list[Any]]) -> str:
    lines = [csv_row(names, "\n"), *(csv_row([_cell(v) for v in row], "\n") for row in rows)]
    return "".join(lines).rstrip("\n")


def _search_running(data_dir: Path, request: SearchRequest) -> SearchResult:
    """The search run by the ``hubsight run`` that holds the store (its limits apply)."""
    api = LocalApi(data_dir)
    try:
        body = api.search(
            {
                "query": request.query,
                "last": request.last,
                "from": request.start,
                "to": request.end,
                "timezone": request.timezone,
                "log_sets": list(request.log_sets),
                "log_names": list(request.log_names),
                "limit": request.limit,
                "strict": request.strict,
                "wait_ms": 10_000,
            }
        )
    finally:
        api.close()
    return SearchResult(
        kind=body["kind"],
        window=TimeWindow(parse_iso(body["from"]), parse_iso(body["to"])),
        events=body.get("events", []),
        columns=body.get("columns", []),
        rows=body.get("rows", []),
        next_cursor=body.get("next_cursor"),
        elapsed_ms=body.get("elapsed_ms", 0.0),
        time_limit_hit=body.get("time_limit_hit", False),
        result_cap_hit=body.get("result_cap_hit", False),
        warnings=[QueryWarning(**w) for w in body.get("warnings", [])],
    )


def parse_iso(text: str) -> datetime:
    """A UTC time as the API writes it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@click.command("search")
@click.argument("query")
@click.option("--last", help="Relative range: 15m, 24h, 'last 7 days', today, yesterday.")
@click.option("--from", "start", help="Start: ISO 8601 (in --timezone if no offset) or epoch ms.")
@click.option("--to", "end", help="End (default: now), same forms as --from.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone for times.")
@click.option("--log-set", "log_sets", multiple=True, help="Search only this log set (repeat).")
@click.option("--log-name", "log_names", multiple=True, help="Search only this log (repeat).")
@click.option("--limit", type=click.IntRange(min=1), help="Events or groups to return.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--time-limit", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds before the search stops with what it has.")  # fmt: skip
@click.option("--max-results", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Most rows a search returns.")  # fmt: skip
@click.option("--strict", is_flag=True,
              help="Unknown keys are errors (else read from the raw record, warned).")  # fmt: skip
@click.pass_context
def search_cmd(
    ctx: click.Context,
    query: str,
    last: str | None,
    start: str | None,
    end: str | None,
    timezone: str,
    log_sets: tuple[str, ...],
    log_names: tuple[str, ...],
    limit: int | None,
    fmt: str,
    time_limit: float,
    max_results: int,
    strict: bool,
) -> None:
    """Run a LEQL QUERY, e.g. 'where(result=FAILED_BAD_PASSWORD) groupby(user)'."""
    request = SearchRequest(
        query=query,
        last=last,
        start=start,
        end=end,
        timezone=timezone,
        log_sets=log_sets,
        log_names=log_names,
        limit=limit,
        strict=strict,
    )
    data_dir: Path = ctx.obj
    limits = SearchLimits(time_limit_s=time_limit, result_cap=max_results)
    if is_running(data_dir):
        result = _search_running(data_dir, request)
    else:
        store = open_store(store_settings(data_dir))
        try:
            result = search(store, request, limits)
        finally:
            store.close()
    if fmt == "json":
        click.echo(msgspec.json.encode(_document(result)).decode())
    else:
        names, rows = _table(result)
        click.echo(_render_csv(names, rows) if fmt == "csv" else _render_table(names, rows))
    for warning in result.warnings:
        click.echo(f"warning: {warning.message} (line {warning.line}, column {warning.column})",
                   err=True)  # fmt: skip
        if warning.hint:
            click.echo(f"hint: {warning.hint}", err=True)
    if result.time_limit_hit:
        click.echo(f"note: stopped at the {time_limit:g} s time limit; results are partial",
                   err=True)  # fmt: skip
    if result.result_cap_hit:
        click.echo(f"note: capped at {max_results} rows (--max-results)", err=True)
    sys.stdout.flush()
