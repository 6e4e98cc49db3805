"""``hubsight alerts list | show | close``: read and triage alerts."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click

from hubsight.cli.source_cmd import format_table
from hubsight.cli.trail import record_cli
from hubsight.detect.alerts import DISPOSITIONS, STATUSES, AlertFilter, AlertStore
from hubsight.detect.base import Severity
from hubsight.detect.db import DetectDB
from hubsight.store.audit import changes


def _store(data_dir: Path) -> AlertStore:
    return AlertStore(DetectDB.in_dir(data_dir))


@click.group("alerts")
def alerts() -> None:
    """Alerts and notables raised by the detection rules."""


@alerts.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--severity", type=click.Choice([s.value for s in Severity]), default=None)
@click.option("--rule", "rule_id", default=None, help="Only this rule id.")
@click.option("--user", default=None, help="Only alerts about this user.")
@click.option("--notables/--no-notables", default=False, help="Include notables.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def list_alerts(
    data_dir: Path,
    status: Any,
    severity: str | None,
    rule_id: str | None,
    user: str | None,
    notables: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Alerts, most recent first."""
    found = _store(data_dir).find(
        AlertFilter(
            status=status,
            severity=Severity(severity) if severity else None,
            rule_id=rule_id,
            user=user,
            notable=None if notables else False,
            limit=limit,
        )
    )
    if as_json:
        for alert in found:
            click.echo(json.dumps(alert.summary()))
        return
    if not found:
        click.echo("no alerts")
        return
    rows = [
        (a.id, a.severity.value, a.status, f"{a.last_event_time:%Y-%m-%d %H:%M}", a.title)
        for a in found
    ]
    click.echo(format_table(("ID", "SEVERITY", "STATUS", "LAST EVENT", "TITLE"), rows))


@alerts.command("show")
@click.argument("alert_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def show(data_dir: Path, alert_id: str, as_json: bool) -> None:
    """One alert with its evidence, baseline, context and history."""
    store = _store(data_dir)
    alert = store.get(alert_id)
    doc = {
        **alert.summary(),
        "technique": alert.technique,
        "runbook": alert.runbook,
        "context": alert.context,
        "history": store.history(alert_id),
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"{alert.title}\n  id {alert.id}  rule {alert.rule_id}  {alert.severity.value}")
    click.echo(f"  status {alert.status}  disposition {alert.disposition or '-'}")
    click.echo(
        f"  events {alert.first_event_time.isoformat()} .. {alert.last_event_time.isoformat()}"
    )
    if alert.baseline:
        click.echo(f"  baseline: {alert.baseline}")
    click.echo(f"  next: {alert.runbook}")
    click.echo("  evidence:")
    for ref in alert.evidence:
        click.echo(
            f"    {ref.timestamp.isoformat()} {ref.log_name} "
            f"{ref.source_topic}[{ref.source_partition}]@{ref.source_offset}#{ref.record_index}"
        )
    for entry in doc["history"]:
        click.echo(f"  {entry['at']} {entry['actor']} {entry['action']}: {entry['detail']}")


@alerts.command("close")
@click.argument("alert_id")
@click.option("--disposition", type=click.Choice(DISPOSITIONS), required=True)
@click.option("--comment", default=None, help="Why it is closed.")
@click.option("--actor", default=None, help="Who closes it (default: the OS user).")
@click.pass_obj
def close(
    data_dir: Path, alert_id: str, disposition: Any, comment: str | None, actor: str | None
) -> None:
    """Close an alert with a disposition."""
    store = _store(data_dir)
    before = store.get(alert_id)
    alert = store.update(
        alert_id,
        actor=actor or getpass.getuser(),
        status="closed",
        disposition=disposition,
        comment=comment,
    )
    changed = changes(
        {"status": before.status, "disposition": before.disposition},
        {"status": alert.status, "disposition": alert.disposition},
    )
    record_cli(data_dir, "alert.triage", alert.id, changes=changed, comment=comment)
    click.echo(f"closed {alert.id} as {alert.disposition}")
