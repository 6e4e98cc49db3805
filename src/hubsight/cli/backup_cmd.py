"""``hubsight backup DIR`` (also while ``run`` runs) and ``hubsight restore DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hubsight import backup
from hubsight.cli.local_api import LocalApi
from hubsight.cli.options import store_settings
from hubsight.cli.trail import record_cli
from hubsight.service import is_running, run_lock
from hubsight.store.backends import open_store


@click.command("backup")
@click.argument("directory", type=click.Path(path_type=Path))
@click.pass_obj
def backup_cmd(data_dir: Path, directory: Path) -> None:
    """Copy the data directory (events, sources with their key, users, alerts) to DIRECTORY."""
    target = directory.resolve()
    manifest: dict[str, Any]
    if is_running(data_dir):
        # The running service holds the event store: it takes the copy.
        api = LocalApi(data_dir)
        try:
            manifest = api.call("POST", "/api/v1/backup", {"dir": str(target)})
        finally:
            api.close()
    else:
        with run_lock(data_dir):
            store = open_store(store_settings(data_dir))
            try:
                manifest = backup.create(data_dir, store, target)
            finally:
                store.close()
        record_cli(data_dir, "backup", str(target))
    click.echo(f"backed up {_summary(manifest)} to {target}")
    click.echo("it holds the secret key of the stored secrets: keep it as safe as the key")


@click.command("restore")
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.pass_obj
def restore_cmd(data_dir: Path, directory: Path) -> None:
    """Bring the backup in DIRECTORY back into an empty --data-dir."""
    with run_lock(data_dir):
        manifest = backup.restore(directory, data_dir)
    record_cli(data_dir, "restore", str(directory.resolve()))
    click.echo(f"restored {_summary(manifest)} into {data_dir}")


def _summary(manifest: dict[str, Any]) -> str:
    events = sum(manifest["events_by_log_set"].values())
    return f"{events} events and {', '.join(manifest['contents'])} (taken {manifest['created_at']})"
