"""``hubsight notify list | test``: the notification targets in use, and a test delivery."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hubsight.cli.source_cmd import format_table
from hubsight.detect.db import DetectDB
from hubsight.detect.notify import send_test
from hubsight.detect.runtime import load_targets
from hubsight.detect.targets import public
from hubsight.errors import HubsightError, NotFoundError


@click.group("notify")
def notify() -> None:
    """Notification targets (webhook, syslog, email): list them, send a test."""


@notify.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def list_targets(data_dir: Path, as_json: bool) -> None:
    """Every target in use, where it was set, and whether its secrets are set (never them)."""
    db = DetectDB.in_dir(data_dir)
    try:
        docs = [public(c.target, c.origin) for c in load_targets(data_dir, db)]
    finally:
        db.close()
    if as_json:
        for doc in docs:
            click.echo(json.dumps(doc))
        return
    if not docs:
        click.echo("no notification targets: add them in the console (Settings) or detect.toml")
        return
    rows = [
        (
            d["name"],
            d["kind"],
            "on" if d["enabled"] else "off",
            ",".join(d["severities"]),
            d["origin"],
            d["where"],
        )
        for d in docs
    ]
    click.echo(format_table(("NAME", "KIND", "STATE", "SEVERITIES", "SET IN", "WHERE"), rows))


@notify.command("test")
@click.argument("name")
@click.pass_obj
def test(data_dir: Path, name: str) -> None:
    """Send one test notification to target NAME now and say how the delivery went."""
    db = DetectDB.in_dir(data_dir)
    try:
        found = {c.name: c.target for c in load_targets(data_dir, db)}
    finally:
        db.close()
    if name not in found:
        raise NotFoundError(
            f"no notification target named {name!r}", hint="`hubsight notify list` shows them"
        )
    result = send_test(found[name])
    if not result.ok:
        raise HubsightError(f"not delivered to {result.target}: {result.error}", hint=result.hint)
    click.echo(f"delivered to {result.target} in {result.elapsed_ms:.0f} ms")
