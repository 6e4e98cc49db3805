"""``hubsight retention``: how long each log set's events are kept, and the disk they take."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hubsight.cli.local_api import LocalApi
from hubsight.cli.options import store_settings
from hubsight.cli.source_cmd import format_table
from hubsight.cli.trail import record_cli
from hubsight.service import is_running
from hubsight.store import retention as policy
from hubsight.store.backends import open_store
from hubsight.store.catalog import Catalog


@click.group("retention", invoke_without_command=True)
@click.pass_context
def retention(ctx: click.Context) -> None:
    """Days kept per log set (default 90, Unparsed Data 14); `list` when no command is given."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_retention)


@retention.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def list_retention(data_dir: Path, as_json: bool) -> None:
    """Per log set: days kept, events stored, disk used (estimated)."""
    rows = _rows(data_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [
        (r["log_set"], r["days"], r["events"], policy.describe_bytes(r["bytes_on_disk"]))
        for r in rows
    ]
    click.echo(format_table(("LOG SET", "DAYS KEPT", "EVENTS", "DISK"), table))


@retention.command("set")
@click.argument("log_set")
@click.argument("days", type=int)
@click.pass_obj
def set_retention(data_dir: Path, log_set: str, days: int) -> None:
    """Keep LOG_SET's events DAYS days, e.g. `retention set 'Unparsed Data' 7`."""
    catalog = Catalog(data_dir)
    was = catalog.retention().get(log_set)
    catalog.set_retention(log_set, days)
    record_cli(data_dir, "retention.update", log_set, changes={"days": [was, days]})
    when = "within a second" if is_running(data_dir) else "when `hubsight run` starts"
    click.echo(f"{log_set}: events kept {days} days (the store applies it {when})")


def _rows(data_dir: Path) -> list[dict[str, Any]]:
    # The running service holds the store: ask it; else open the store here.
    if is_running(data_dir):
        api = LocalApi(data_dir)
        try:
            rows: list[dict[str, Any]] = api.call("GET", "/api/v1/retention")
            return rows
        finally:
            api.close()
    store = open_store(store_settings(data_dir))
    try:
        return policy.usage(store, Catalog(data_dir).retention())
    finally:
        store.close()
