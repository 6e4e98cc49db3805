"""``hubsight backup`` while ``run`` runs, then ``restore`` into a new data directory: the same
events, alerts, sources (secrets still decrypt), users and retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result

from hubsight.cli.main import cli
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_signals import FlowConfig, UnusualAuthFlow
from hubsight.parsing.event import Event, LogSet
from hubsight.sources.config import make_source
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.catalog import Catalog
from hubsight.store.users import UserStore

from tests.support import (
    FAST_HASH,
    PLANTED_KEY,
    connection_string,
    connection_string_of,
    hubsight_running,
)


def _cli(data_dir: Path, *args: str) -> Result:
    # In this process: only `run` needs one of its own.
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])


def _events() -> list[Event]:
    now = datetime.now(UTC)
    sets = [LogSet.INGRESS_AUTHENTICATION] * 3 + [LogSet.UNPARSED_DATA] * 2
    return [
        Event(
            timestamp=now - timedelta(minutes=n),
            log_set=log_set,
            log_name="azure-prod",
            raw=msgspec.Raw(json.dumps({"n": n}).encode()),
        )
        for n, log_set in enumerate(sets)
    ]


def _counts(data_dir: Path) -> dict[str, int]:
    store = open_store(StoreSettings(data_dir=data_dir))
    try:
        rows = store.select("SELECT log_set, count() AS n FROM events GROUP BY log_set")
    finally:
        store.close()
    return {row["log_set"]: int(row["n"]) for row in rows}


def _alert_ids(data_dir: Path) -> list[str]:
    db = DetectDB.in_dir(data_dir)
    try:
        return [str(row["id"]) for row in db.rows("SELECT id FROM alerts ORDER BY id")]
    finally:
        db.close()


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A data directory with events, an alert, a source with a secret, users and a retention."""
    data_dir = tmp_path / "data"
    catalog = Catalog(data_dir)
    catalog.add(
        make_source(
            {
                "name": "azure-prod",
                "profile": {
                    "kind": "eventhubs",
                    "server": "contoso-logs.servicebus.windows.net",
                    "connection_string": connection_string(),
                },
            }
        )
    )
    catalog.set_retention(LogSet.UNPARSED_DATA.value, 7)
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("root", "admin passphrase!", "admin")
    users.create("ana", "analyst passphrase", "analyst")
    store = open_store(StoreSettings(data_dir=data_dir))
    try:
        store.write(_events())
    finally:
        store.close()
    (example,) = [e.events[0] for e in UnusualAuthFlow.examples() if e.fires][:1]
    engine = DetectionEngine(
        DetectDB.in_dir(data_dir),
        [UnusualAuthFlow(FlowConfig())],
        options=EngineOptions(learning=timedelta(0)),
    )
    assert engine.process([example])
    engine.close()
    return data_dir


def test_backup_while_running_restores_everything(filled: Path, tmp_path: Path) -> None:
    target = tmp_path / "backup"
    (tmp_path / "file").write_text("not a directory\n")
    with hubsight_running(filled):
        # The service's refusal of the path was a 500 the CLI could not read: a traceback.
        refused = _cli(filled, "backup", str(tmp_path / "file" / "backup"))
        assert (refused.exit_code, refused.output) == (
            1,
            f"error: {tmp_path / 'file' / 'backup'}: Not a directory\n"
            "hint: a part of the path is a file, not a directory: check the path\n",
        )
        done = _cli(filled, "backup", str(target))
        assert done.exit_code == 0, done.output
    assert "backed up 5 events" in done.output
    assert PLANTED_KEY not in done.output
    assert target.stat().st_mode & 0o777 == 0o700
    manifest = json.loads((target / "hubsight-backup.json").read_text())
    assert manifest["events_by_log_set"] == {"Ingress Authentication": 3, "Unparsed Data": 2}

    restored = tmp_path / "restored"
    done = _cli(restored, "restore", str(target))
    assert done.exit_code == 0, done.output
    assert "restored 5 events" in done.output
    assert _counts(restored) == {"Ingress Authentication": 3, "Unparsed Data": 2}
    assert _alert_ids(restored) == _alert_ids(filled)
    assert len(_alert_ids(restored)) == 1
    source = Catalog(restored).get("azure-prod")
    assert connection_string_of(source) == connection_string()
    users = UserStore(restored, hasher=FAST_HASH)
    assert sorted(a.name for a in users.accounts()) == ["ana", "root"]
    assert users.check_password("ana", "analyst passphrase") is not None
    assert Catalog(restored).retention()[LogSet.UNPARSED_DATA.value] == 7
    assert (restored / "secret.key").stat().st_mode & 0o777 == 0o600

    # Never over data: a second restore into the same directory is refused, nothing changes.
    again = _cli(restored, "restore", str(target))
    assert again.exit_code == 2
    assert "already holds hubsight data" in again.output
    assert _counts(restored) == {"Ingress Authentication": 3, "Unparsed Data": 2}


def test_backup_and_restore_refuse_what_they_cannot_use(filled: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    refused = _cli(filled, "backup", str(busy))
    assert refused.exit_code == 2
    assert "is not empty" in refused.output
    assert (busy / "notes.txt").read_text() == "mine"

    not_backup = _cli(tmp_path / "new", "restore", str(busy))
    assert not_backup.exit_code == 2
    assert "is not a hubsight backup" in not_backup.output

    target = tmp_path / "backup"
    assert _cli(filled, "backup", str(target)).exit_code == 0
    manifest = json.loads((target / "hubsight-backup.json").read_text())
    (target / "hubsight-backup.json").write_text(json.dumps(manifest | {"format": 99}))
    newer = _cli(tmp_path / "new", "restore", str(target))
    assert newer.exit_code == 2
    assert "backup format 99" in newer.output
    assert "hint:" in newer.output
