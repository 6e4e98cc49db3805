"""``hubsight audit``: print the audit trail, and ``audit verify`` its hash chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from hubsight.cli.source_cmd import format_table
from hubsight.errors import HubsightError
from hubsight.query.timerange import parse_since
from hubsight.store.audit import AuditFilter, AuditLog


@click.group("audit", invoke_without_command=True)
@click.option("--actor", default=None, help="Only this account (or cli:USER).")
@click.option("--action", default=None, help="Only this action or family: sign-in, source, ...")
@click.option("--since", default=None, help="From this time: 24h, 7d or ISO 8601.")
@click.option("--until", default=None, help="Before this time: as --since.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, newest first.")
@click.pass_context
def audit(
    ctx: click.Context,
    actor: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Who signed in, changed, triaged or exported what, when and from where; newest first."""
    if ctx.invoked_subcommand is not None:
        return
    flt = AuditFilter(
        actor=actor,
        action=action,
        since=parse_since(since, datetime.now(UTC), "--since"),
        until=parse_since(until, datetime.now(UTC), "--until"),
        limit=limit,
    )
    entries = AuditLog(ctx.obj).entries(flt)
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry.as_dict()))
        return
    if not entries:
        click.echo("no audit entries match")
        return
    rows = [
        (
            e.seq,
            e.at,
            f"{e.actor} ({e.via})",
            e.address or "",
            e.action,
            e.target or "",
            e.outcome,
            _changed(e.details),
        )
        for e in entries
    ]
    header = ("SEQ", "AT", "WHO", "FROM", "ACTION", "OBJECT", "OUTCOME", "CHANGED")
    click.echo(format_table(header, rows))


def _changed(details: dict[str, Any]) -> str:
    changed = details.get("changes") or {}
    return ", ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in changed.items())


@audit.command("verify")
@click.pass_obj
def verify(data_dir: Path) -> None:
    """Check the hash chain from the first entry to the sealed head; exit 1 at any break."""
    found = AuditLog(data_dir).verify()
    for problem in found.problems:
        click.echo(f"BROKEN {problem}", err=True)
    if not found.ok:
        raise HubsightError(
            f"the audit trail was changed: {len(found.problems)} break(s) in {found.count} entries",
            hint="each BROKEN line names the first entry that no longer fits its chain",
        )
    began = f" since {found.began}" if found.began else ""
    click.echo(f"ok: {found.count} entries{began}, chain and sealed head intact")
