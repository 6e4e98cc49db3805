"""``hubsight investigations list | show | close | reopen``: alerts grouped by what they concern."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click

from hubsight.cli.source_cmd import format_table
from hubsight.cli.trail import record_cli
from hubsight.detect.alerts import DISPOSITIONS, STATUSES
from hubsight.detect.db import DetectDB
from hubsight.detect.grouping import PRIORITIES
from hubsight.detect.investigations import (
    Investigation,
    InvestigationFilter,
    InvestigationStore,
    Triage,
    alert_moves,
)
from hubsight.errors import ConfigError
from hubsight.store.audit import changes


def _store(data_dir: Path) -> InvestigationStore:
    return InvestigationStore(DetectDB.in_dir(data_dir))


@click.group("investigations")
def investigations() -> None:
    """Investigations: the alerts about one user, address or resource, triaged together."""


@investigations.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--assignee", default=None, help="Only investigations assigned to this account.")
@click.option("--priority", type=click.Choice(PRIORITIES), default=None)
@click.option("--search", "text", default=None, help="Part of a title, id, user or address.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def list_investigations(
    data_dir: Path,
    status: Any,
    assignee: str | None,
    priority: Any,
    text: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Investigations, most recent event first."""
    found = _store(data_dir).find(
        InvestigationFilter(
            status=status, assignee=assignee, priority=priority, text=text, limit=limit
        )
    )
    if as_json:
        for item in found:
            click.echo(json.dumps(item.summary()))
        return
    if not found:
        click.echo("no investigations")
        return
    rows = [
        (
            i.id,
            i.priority,
            i.status,
            str(i.alert_count),
            i.assignee or "-",
            f"{i.last_event_time:%Y-%m-%d %H:%M}",
            i.title,
        )
        for i in found
    ]
    header = ("ID", "PRIORITY", "STATUS", "ALERTS", "ASSIGNEE", "LAST EVENT", "TITLE")
    click.echo(format_table(header, rows))


@investigations.command("show")
@click.argument("investigation_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def show(data_dir: Path, investigation_id: str, as_json: bool) -> None:
    """One investigation: its alerts, its timeline and its history."""
    store = _store(data_dir)
    found = store.get(investigation_id)
    timeline = store.timeline(investigation_id)
    history = store.history(investigation_id)
    if as_json:
        doc = {
            **found.summary(),
            "alerts": [a.summary() for a in store.member_alerts(investigation_id)],
            "timeline": [
                {
                    "at": e.at.isoformat(),
                    "kind": e.kind,
                    "alert_id": e.alert.id,
                    "title": e.alert.title,
                    "evidence": e.ref.as_dict() if e.ref else None,
                }
                for e in timeline
            ],
            "history": history,
        }
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"{found.title}\n  id {found.id}  priority {found.priority}")
    click.echo(f"  status {found.status}  disposition {found.disposition or '-'}")
    click.echo(f"  assignee {found.assignee or '-'}  concerns {', '.join(found.subjects) or '-'}")
    click.echo(
        f"  events {found.first_event_time.isoformat()} .. {found.last_event_time.isoformat()}"
    )
    click.echo("  timeline:")
    for entry in timeline:
        where = ""
        if entry.ref is not None:
            ref = entry.ref
            where = f" {ref.log_name} {ref.source_topic}[{ref.source_partition}]"
            where += f"@{ref.source_offset}"
        click.echo(f"    {entry.at.isoformat()} {entry.kind:8} {entry.alert.title}{where}")
    for item in history:
        click.echo(f"  {item['at']} {item['actor']} {item['action']}: {item['detail']}")


@investigations.command("close")
@click.argument("investigation_id")
@click.option("--disposition", type=click.Choice(DISPOSITIONS), required=True)
@click.option("--comment", default=None, help="Why it is closed.")
@click.option("--actor", default=None, help="Who closes it (default: the OS user).")
@click.pass_obj
def close(
    data_dir: Path, investigation_id: str, disposition: Any, comment: str | None, actor: str | None
) -> None:
    """Close an investigation and its open alerts with a disposition."""
    triage = Triage(status="closed", disposition=disposition, comment=comment)
    found, _ = _triage(data_dir, investigation_id, triage, actor)
    click.echo(f"closed {found.id} as {found.disposition} ({found.alert_count} alerts)")


@investigations.command("reopen")
@click.argument("investigation_id")
@click.option(
    "--status", type=click.Choice(["open", "investigating"]), default="open", show_default=True
)
@click.option("--comment", default=None, help="Why it is reopened.")
@click.option("--actor", default=None, help="Who reopens it (default: the OS user).")
@click.pass_obj
def reopen(
    data_dir: Path, investigation_id: str, status: Any, comment: str | None, actor: str | None
) -> None:
    """Reopen a closed investigation; the alerts closing it closed are reopened too."""
    store = _store(data_dir)
    if store.get(investigation_id).status != "closed":
        raise ConfigError(
            f"investigation {investigation_id} is not closed",
            hint="`hubsight investigations show ID` shows its status",
        )
    found, moves = _triage(
        data_dir, investigation_id, Triage(status=status, comment=comment), actor
    )
    reopened = moves.get("alerts_reopened", [])
    click.echo(
        f"reopened {found.id} as {found.status}; {len(reopened)} alert(s) it had closed reopened"
        + (f": {', '.join(reopened)}" if reopened else "")
    )


def _triage(
    data_dir: Path, investigation_id: str, triage: Triage, actor: str | None
) -> tuple[Investigation, dict[str, list[str]]]:
    """Apply ``triage``, record it in the audit trail with the alerts it closed or reopened."""
    store = _store(data_dir)
    before = store.get(investigation_id)
    members = store.member_alerts(investigation_id)
    found = store.update(investigation_id, triage, actor=actor or getpass.getuser())
    moves = alert_moves(members, store.member_alerts(investigation_id))
    changed = changes(
        {"status": before.status, "disposition": before.disposition},
        {"status": found.status, "disposition": found.disposition},
    )
    record_cli(
        data_dir, "investigation.triage", found.id, changes=changed, comment=triage.comment,
        **moves,
    )  # fmt: skip
    return found, moves
