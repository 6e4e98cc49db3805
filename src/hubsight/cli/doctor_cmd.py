"""``hubsight doctor``: check the data directory; exit code 1 when something is damaged."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

import click

from hubsight.cli.options import store_settings
from hubsight.doctor import examine
from hubsight.service import is_running, run_lock


@click.command("doctor")
@click.option(
    "--reattach",
    is_flag=True,
    help="Offer each part ClickHouse set aside back to its table (taken if its files are whole).",
)
@click.option(
    "--set-aside",
    "set_aside_failing",
    is_flag=True,
    help="Take the parts that fail their check out of their table (their files are kept).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def doctor(data_dir: Path, reattach: bool, set_aside_failing: bool, as_json: bool) -> None:
    """Check the secret key, the SQLite files and the event store; say how to recover."""
    running = is_running(data_dir)
    # Held while checking, so that no `hubsight run` starts on a store being repaired.
    with nullcontext() if running else run_lock(data_dir):
        findings = examine(
            data_dir,
            store_settings(data_dir),
            running=running,
            reattach_parts=reattach,
            set_aside_failing=set_aside_failing,
        )
    if as_json:
        click.echo(json.dumps([f.as_json() for f in findings], indent=2))
    else:
        for finding in findings:
            if finding.ok:
                click.echo(f"ok: {finding.subject}: {finding.message}")
            else:
                click.echo(f"error: {finding.subject}: {finding.message}", err=True)
            if finding.hint:
                click.echo(f"hint: {finding.hint}", err=not finding.ok)
    if not all(f.ok for f in findings):
        sys.exit(1)
