"""``hubsight rules hunt RULE_OR_FILE``: what a Sigma rule would have raised over stored events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from hubsight.cli.local_api import LocalApi
from hubsight.cli.options import store_settings
from hubsight.cli.source_cmd import format_table
from hubsight.detect.hunt import hunt, hunt_rules
from hubsight.query.timerange import resolve_window
from hubsight.service import is_running
from hubsight.store.backends import open_store


@click.command("hunt")
@click.argument("rule_or_file")
@click.option("--last", help="How far back: 90d (the default), 24h, 'last 7 days'.")
@click.option("--from", "start", help="Start: ISO 8601 or epoch ms.")
@click.option("--to", "end", help="End (default: now).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)  # fmt: skip
@click.pass_obj
def hunt_cmd(
    data_dir: Path, rule_or_file: str, last: str | None, start: str | None, end: str | None,
    fmt: str,
) -> None:  # fmt: skip
    """Run RULE_OR_FILE (a Sigma file, or a shipped or imported rule's id) over stored events.

    Built-in rules that judge each event alone (network.nsg_rule_management_port, ...) too."""
    last = last or (None if start else "90d")
    if is_running(data_dir):
        body: dict[str, Any] = {"last": last, "from": start, "to": end}
        path = Path(rule_or_file)
        if path.is_file():
            body["sigma"] = path.read_text("utf-8")
        else:
            body["rule"] = rule_or_file
        api = LocalApi(data_dir)
        try:
            document: dict[str, Any] = api.call("POST", "/api/v1/rules/hunt", body)
        finally:
            api.close()
    else:
        rules = hunt_rules(data_dir, rule_or_file)
        window = resolve_window(now=datetime.now(UTC), last=last, start=start, end=end)
        store = open_store(store_settings(data_dir))
        try:
            document = hunt(store, rules, window.start, window.end).to_json()
        finally:
            store.close()
    if fmt == "json":
        click.echo(json.dumps(document))
        return
    click.echo(
        f"{document['alert_count']} alert(s) from {', '.join(document['rules'])} between "
        f"{document['from']} and {document['to']} ({document['matched_events']} matching events "
        f"of {document['events_read']} read)"
    )
    rows = [
        (
            a["first_event_time"], a["rule_id"], a["severity"], str(a["events"]),
            a["user"] or "-", a["source_ip"] or "-", a["title"],
        )
        for a in document["alerts"]
    ]  # fmt: skip
    if rows:
        click.echo(
            format_table(
                ("FIRST EVENT", "RULE", "SEVERITY", "EVENTS", "USER", "ADDRESS", "TITLE"), rows
            )
        )
    for label, key in (("users", "top_users"), ("addresses", "top_source_ips")):
        if document[key]:
            most = ", ".join(f"{name} ({count})" for name, count in document[key])
            click.echo(f"most alerts, {label}: {most}")
