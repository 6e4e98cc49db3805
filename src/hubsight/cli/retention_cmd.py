"""``hubsight retention``: how long each log set's events are kept, and closed alerts and
investigations (``alerts``), and the disk they take."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hubsight.cli.local_api import LocalApi
from hubsight.cli.options import store_settings
from hubsight.cli.source_cmd import format_table
from hubsight.cli.trail import record_cli
from hubsight.detect import expiry
from hubsight.detect.db import DetectDB
from hubsight.service import is_running
from hubsight.store import retention as policy
from hubsight.store.backends import open_store
from hubsight.store.catalog import Catalog


@click.group("retention", invoke_without_command=True)
@click.pass_context
def retention(ctx: click.Context) -> None:
    """Days kept per log set (default 90, Unparsed Data 14), and how long closed alerts and
    investigations are kept (`alerts`: for ever unless set); `list` when no command is given."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_retention)


@retention.command("list")
@click.argument("what", required=False, metavar="[alerts]")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def list_retention(data_dir: Path, what: str | None, as_json: bool) -> None:
    """Per log set: days kept, events stored, disk used (estimated); then closed alerts and
    investigations. `list alerts` shows only those (with --json: one object, where plain
    --json lists the log sets as before)."""
    if what is not None and what != policy.CASES:
        raise click.BadParameter(
            f"{what!r} cannot be listed alone; only {policy.CASES!r} can (`list` shows every "
            "log set)",
            param_hint="WHAT",
        )
    cases = _cases(data_dir)
    if what is not None:
        if as_json:
            click.echo(json.dumps(cases, indent=2))
        else:
            click.echo(_cases_table(cases))
        return
    rows = _rows(data_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [
        (r["log_set"], r["days"], r["events"], policy.describe_bytes(r["bytes_on_disk"]))
        for r in rows
    ]
    click.echo(format_table(("LOG SET", "DAYS KEPT", "EVENTS", "DISK"), table))
    click.echo()
    click.echo(_cases_table(cases))


@retention.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("log_set")
@click.argument("days")
@click.pass_context
def set_retention(ctx: click.Context, log_set: str, days: str) -> None:
    """Keep LOG_SET's events DAYS days, e.g. `retention set 'Unparsed Data' 7`; or, as LOG_SET
    `alerts` (lower case: no log set is), delete closed alerts and investigations DAYS days after
    they last changed, e.g. `retention set alerts 365`; `retention set alerts off` keeps them for
    ever (the default). Open and in-progress ones, and the alerts of an investigation kept, are
    never deleted."""
    data_dir: Path = ctx.obj
    catalog = Catalog(data_dir)
    if log_set == policy.CASES:
        wanted = policy.checked_case_days(days)
        was_case = catalog.case_retention()
        catalog.set_case_retention(wanted)
        record_cli(data_dir, "retention.update", log_set, changes={"days": [was_case, wanted]})
        how = policy.describe_case_days(wanted)
        when = (
            "the running service deletes what is due within a minute"
            if is_running(data_dir)
            else "`hubsight run` deletes what is due once it runs"
        )
        click.echo(
            f"{log_set}: closed alerts and investigations kept {how}"
            + ("" if wanted is None else f" ({when})")
        )
        return
    try:
        count = int(days)
    except ValueError:
        # As click said it when DAYS was an int argument.
        raise click.BadParameter(
            f"{days!r} is not a valid integer.", ctx=ctx, param=_param(ctx, "days")
        ) from None
    was = catalog.retention().get(log_set)
    catalog.set_retention(log_set, count)
    record_cli(data_dir, "retention.update", log_set, changes={"days": [was, count]})
    when = "within a second" if is_running(data_dir) else "when `hubsight run` starts"
    click.echo(f"{log_set}: events kept {count} days (the store applies it {when})")


def _param(ctx: click.Context, name: str) -> click.Parameter | None:
    return next((p for p in ctx.command.params if p.name == name), None)


def _cases(data_dir: Path) -> dict[str, Any]:
    # SQLite: read here, beside a running `hubsight run` too.
    db = DetectDB.in_dir(data_dir)
    try:
        return expiry.usage(db, Catalog(data_dir).case_retention())
    finally:
        db.close()


def _cases_table(cases: dict[str, Any]) -> str:
    row = (
        cases["name"],
        policy.describe_case_days(cases["days"]),
        cases["alerts"],
        cases["investigations"],
        policy.describe_bytes(cases["bytes_on_disk"]),
    )
    return format_table(("CLOSED CASES", "KEPT", "ALERTS", "INVESTIGATIONS", "DATABASE"), [row])


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
