"""``hubsight rules coverage``: ATT&CK tactics x techniques of the enabled rules, blind marked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from hubsight.cli.local_api import LocalApi
from hubsight.cli.options import store_settings
from hubsight.cli.source_cmd import format_table
from hubsight.detect.attack import coverage, delivered, matrix, navigator_layer
from hubsight.detect.db import DetectDB
from hubsight.detect.runtime import load_ruleset
from hubsight.service import is_running
from hubsight.store.backends import open_store


def coverage_document(data_dir: Path, *, navigator: bool) -> dict[str, Any]:
    """The coverage of the data directory's enabled rules against its last 24 h of data."""
    db = DetectDB.in_dir(data_dir)
    try:
        rules = load_ruleset(data_dir, db).rules
    finally:
        db.close()
    store = open_store(store_settings(data_dir))
    try:
        counts = delivered(store, datetime.now(UTC))
    finally:
        store.close()
    covered = coverage(rules, counts)
    return navigator_layer(covered) if navigator else matrix(covered)


@click.command("coverage")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "navigator"]),
              default="table", show_default=True,
              help="navigator: an ATT&CK Navigator layer file (JSON) on stdout.")  # fmt: skip
@click.pass_obj
def coverage_cmd(data_dir: Path, fmt: str) -> None:
    """ATT&CK coverage of the enabled rules; a rule whose data did not arrive in 24 h is blind."""
    navigator = fmt == "navigator"
    if is_running(data_dir):
        api = LocalApi(data_dir)
        try:
            suffix = "?format=navigator" if navigator else ""
            document: dict[str, Any] = api.call("GET", f"/api/v1/rules/coverage{suffix}")
        finally:
            api.close()
    else:
        document = coverage_document(data_dir, navigator=navigator)
    if fmt != "table":
        click.echo(json.dumps(document, indent=1 if navigator else None))
        return
    rows = [
        (tactic["tactic"], technique["id"], rule["id"], "BLIND" if rule["blind"] else "ok",
         ", ".join(c["name"] for c in rule["categories"]))
        for tactic in document["tactics"]
        for technique in tactic["techniques"]
        for rule in technique["rules"]
    ]  # fmt: skip
    click.echo(format_table(("TACTIC", "TECHNIQUE", "RULE", "DATA 24H", "CATEGORIES"), rows))
    click.echo(
        f"{document['rules']} enabled rules, {document['blind_rules']} blind "
        f"(none of their categories delivered an event in the last 24 h); "
        f"{len(document['unmapped'])} with a technique outside hubsight's ATT&CK table"
    )
