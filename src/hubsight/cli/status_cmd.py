"""``hubsight status``: the health of every event source, running or not."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from hubsight.cli.options import store_settings
from hubsight.cli.source_cmd import format_table
from hubsight.parsing.geoip import describe_geoip
from hubsight.service import is_running
from hubsight.status import offline_status
from hubsight.store.damage import DOCTOR_HINT, DamagedPart


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def status(data_dir: Path, as_json: bool) -> None:
    """Per source: state, events stored, last event, lag per partition, last error and hint."""
    if _missing(data_dir):
        # Asked of a data directory that does not exist (a typo in --data-dir or
        # HUBSIGHT_DATA_DIR), status made one and said "no event sources": it says so instead,
        # and leaves the path as it was.
        if as_json:
            empty = {
                "running": False,
                "sources": [],
                "damaged_parts": [],
                "store_error": None,
                "geoip": [],
            }
            click.echo(json.dumps({**empty, "data_dir_exists": False}, indent=2))
            return
        click.echo(
            f"no data directory at {data_dir}: nothing has run with it (check --data-dir and "
            "HUBSIGHT_DATA_DIR; `hubsight run` and `hubsight source add` create it)"
        )
        return
    running = is_running(data_dir)
    found = offline_status(data_dir, running=running, store=store_settings(data_dir))
    sources = found["sources"]
    geoip = describe_geoip(None, data_dir)
    if as_json:
        report = {"running": running, **found, "geoip": geoip, "data_dir_exists": True}
        click.echo(json.dumps(report, indent=2))
        return
    for database in geoip:
        click.echo(f"GeoIP: {database['type']} built {database['built']} ({database['path']})")
    if not geoip:
        # The script fills <its argument>/geoip, else ./data's: name this data directory.
        click.echo(
            "GeoIP: no database; to locate IP addresses run scripts/fetch-geoip.sh "
            f"{shlex.quote(str(data_dir))} (in hubsight's source tree), or set HUBSIGHT_GEOIP "
            "to a MaxMind GeoLite2-City file"
        )
    for part in found["damaged_parts"]:
        click.echo(f"event store: {DamagedPart.from_json(part).summary()}")
    if found["damaged_parts"]:
        click.echo(f"  hint: {DOCTOR_HINT}")
    if found["store_error"]:
        click.echo(f"event store: {found['store_error']['error']}")
        if found["store_error"]["hint"]:
            click.echo(f"  hint: {found['store_error']['hint']}")
    if not sources:
        click.echo("no event sources; add one with `hubsight source add`")
        return
    rows = []
    for s in sources:
        lags = [p["lag"] for p in s["lag"] if p["lag"] is not None]
        rows.append(
            (
                s["name"],
                s["state"],
                s["events_stored"],
                s["events_per_minute"],
                s["last_event_time"] or "-",
                sum(lags) if lags else "-",
            )
        )
    click.echo(format_table(("SOURCE", "STATE", "EVENTS", "PER MIN", "LAST EVENT", "LAG"), rows))
    for s in sources:
        if s["last_error"]:
            click.echo(f"\n{s['name']}: {s['last_error']}")
            if s["hint"]:
                click.echo(f"  hint: {s['hint']}")
        elif s["hint"]:
            click.echo(f"\n{s['name']}: {s['hint']}")
        # Health saved before these existed has none.
        if s.get("detection"):
            click.echo(f"{s['name']}: {s['detection']['message']}")
        for notice in s.get("notices", []):
            click.echo(f"{s['name']}: {notice['time']}: {notice['message']}")
    if not running:
        click.echo("\n(hubsight run is not running: states are as last seen)")


def _missing(data_dir: Path) -> bool:
    """Whether nothing is at the path, so that ``run`` could create it there. A path under a
    file, or a file, is not missing: reading it gives the system's error with its hint, as every
    other command does, instead of saying that ``run`` would create it."""
    try:
        data_dir.stat()
    except FileNotFoundError:
        return True
    return False
