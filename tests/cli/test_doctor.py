"""``hubsight doctor`` names what is damaged and how to recover it; commands that meet a damaged
SQLite file say so plainly, never with a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from hubsight.cli.main import cli
from hubsight.detect.db import DetectDB
from hubsight.doctor import examine
from hubsight.parsing.event import Event, LogSet
from hubsight.sources.config import make_source
from hubsight.store.audit import TRIGGERS, AuditLog
from hubsight.store.backends import StoreSettings
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore

from tests.support import connection_string

_DAY = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


def _hubsight(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])


@pytest.fixture
def filled(data_dir: Path) -> Path:
    """A data directory with a source (and its secret), detection state and 200 events in two
    parts; the events table's first part is returned."""
    Catalog(data_dir).add(
        make_source(
            {
                "name": "azure",
                "profile": {
                    "kind": "eventhubs",
                    "server": "contoso-logs.servicebus.windows.net",
                    "connection_string": connection_string(),
                },
            }
        )
    )
    DetectDB.in_dir(data_dir).close()
    store = EmbeddedStore(data_dir)
    try:
        for batch in range(2):
            store.write(
                [
                    Event(
                        timestamp=_DAY,
                        log_set=LogSet.UNPARSED_DATA,
                        log_name="azure",
                        raw=msgspec.Raw(b'{"n": %d}' % i),
                        source_topic="t",
                        source_partition=batch,
                        source_offset=i,
                    )
                    for i in range(100)
                ]
            )
        (row,) = store.select(
            "SELECT path FROM system.parts WHERE table = 'events' AND active "
            "ORDER BY min_block_number LIMIT 1"
        )
    finally:
        store.close()
    return Path(row["path"])


def _damage(path: Path) -> None:
    """Overwrite the file's first bytes, as a bad disk block would."""
    with open(path, "r+b") as handle:
        handle.write(os.urandom(100))


def test_a_sound_data_directory_passes_every_check(data_dir: Path, filled: Path) -> None:
    result = _hubsight(data_dir, "doctor")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"ok: secret key ({data_dir / 'secret.key'}): decrypts the secrets of 1 event source(s)",
        "ok: hubsight.sqlite3: integrity check passed",
        "ok: detect.sqlite3: integrity check passed",
        "ok: audit trail: none yet",
        "ok: event store: CHECK TABLE passed (3 tables)",
    ]


@pytest.mark.parametrize("name", ["hubsight.sqlite3", "detect.sqlite3"])
def test_a_damaged_sqlite_file_is_named_with_how_to_recover(
    data_dir: Path, filled: Path, name: str
) -> None:
    _damage(data_dir / name)
    result = _hubsight(data_dir, "doctor")
    assert result.exit_code == 1
    assert f"error: {name}: damaged: file is not a database\n" in result.output
    assert f"copy NEW/{name} here" in result.output
    assert f"sqlite3 {data_dir / name} .recover" in result.output
    assert "Traceback" not in result.output


def test_commands_meeting_a_damaged_sqlite_file_say_so_without_a_traceback(
    data_dir: Path, filled: Path
) -> None:
    _damage(data_dir / "hubsight.sqlite3")
    status = _hubsight(data_dir, "status")
    assert status.exit_code == 1
    assert status.output == (
        "error: hubsight.sqlite3: file is not a database\n"
        "hint: the file is damaged: run `hubsight doctor` to see what can be recovered\n"
    )
    # `run` as an operator starts it, in its own process; the detection database damaged too.
    _damage(data_dir / "detect.sqlite3")
    run = subprocess.run(
        [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), "run", "--no-web"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert "error: hubsight.sqlite3: file is not a database" in run.stderr
    assert "hint: the file is damaged: run `hubsight doctor`" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
            "entry 2: its content does not match its hash (edited)",
        ),
        (
            "UPDATE audit_head SET count = 2",
            "the head's seal does not match: it was rewritten, or the secret key changed",
        ),
    ],
)
def test_an_audit_trail_changed_in_its_file_is_named(
    data_dir: Path, tamper: str, found: str
) -> None:
    audit = AuditLog(data_dir)
    for n in range(3):
        audit.record(actor="ana", action="rule.update", via="session", target=f"rule{n}")
    sound = _hubsight(data_dir, "doctor", "--json")
    assert sound.exit_code == 0, sound.output
    (trail,) = [f for f in json.loads(sound.stdout) if f["subject"] == "audit trail"]
    assert (trail["ok"], trail["message"].split(" since ")[0]) == (True, "3 entries")
    assert trail["message"].endswith(": hash chain and sealed head intact")
    # As someone with the file would: the append-only triggers dropped, then one row changed.
    db = sqlite3.connect(data_dir / "hubsight.sqlite3", isolation_level=None)
    for trigger in TRIGGERS:
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute(tamper)
    db.close()
    changed = _hubsight(data_dir, "doctor")
    assert changed.exit_code == 1
    assert f"error: audit trail: changed by hand: {found}; " in changed.output
    # Each problem is said: every dropped trigger too (only the first two were).
    for trigger in TRIGGERS:
        assert f"append-only trigger {trigger} was dropped" in changed.output
    assert "hint: `hubsight audit verify` lists every break." in changed.output
    assert "Traceback" not in changed.output
    as_json = json.loads(_hubsight(data_dir, "doctor", "--json").stdout)
    (trail,) = [f for f in as_json if f["subject"] == "audit trail"]
    assert trail["ok"] is False
    assert trail["message"].startswith(f"changed by hand: {found}")


def test_every_audit_trail_problem_is_named_none_behind_another(data_dir: Path) -> None:
    audit = AuditLog(data_dir)
    for n in range(5):
        audit.record(actor="ana", action="rule.update", via="session", target=f"rule{n}")
    db = sqlite3.connect(data_dir / "hubsight.sqlite3", isolation_level=None)
    db.execute(f"DROP TRIGGER {TRIGGERS[0]}")
    db.execute("UPDATE audit_log SET actor = 'mallory'")
    db.close()
    (data_dir / "secret.key").unlink()
    # Only the first three edits were said, and the dropped trigger and the missing key not.
    result = _hubsight(data_dir, "doctor", "--json")
    (trail,) = [f for f in json.loads(result.stdout) if f["subject"] == "audit trail"]
    assert trail["ok"] is False
    assert trail["message"] == (
        "changed by hand: "
        + "".join(f"entry {n}: its content does not match its hash (edited); " for n in (1, 2, 3))
        + f"2 more breaks between entries; append-only trigger {TRIGGERS[0]} was dropped; "
        "its sealed head cannot be checked: no secret key"
    )
    assert trail["hint"].startswith("`hubsight audit verify` lists every break.")
    assert "(the next `hubsight run` puts the triggers back); put back the key" in trail["hint"]


def test_the_audit_trail_is_named_when_only_its_triggers_were_dropped(data_dir: Path) -> None:
    AuditLog(data_dir).record(actor="ana", action="sign-in", via="session")
    db = sqlite3.connect(data_dir / "hubsight.sqlite3", isolation_level=None)
    db.execute(f"DROP TRIGGER {TRIGGERS[1]}")
    db.close()
    result = _hubsight(data_dir, "doctor")
    assert result.exit_code == 1
    assert (
        f"error: audit trail: changed by hand: append-only trigger {TRIGGERS[1]} was dropped\n"
        in result.output
    )
    assert "(the next `hubsight run` puts the triggers back)" in result.output


def test_the_wrong_or_exposed_key_is_named(data_dir: Path, filled: Path) -> None:
    key = data_dir / "secret.key"
    key.chmod(0o644)
    exposed = _hubsight(data_dir, "doctor")
    assert exposed.exit_code == 1
    assert f"error: secret key ({key}): readable by others\nhint: make it its owner's only: " in (
        exposed.output
    )
    key.write_bytes(Fernet.generate_key())
    key.chmod(0o600)
    wrong = _hubsight(data_dir, "doctor")
    assert wrong.exit_code == 1
    assert f"error: secret key ({key}): a stored secret cannot be decrypted with the key in" in (
        wrong.output
    )


def test_a_part_failing_its_check_is_named_and_set_aside_on_request(
    data_dir: Path, filled: Path
) -> None:
    # Same size, other bytes: ClickHouse opens the part and only its checksums tell.
    data = filled / "data.bin"
    body = bytearray(data.read_bytes())
    body[100:110] = bytes(10)
    data.write_bytes(body)
    found = _hubsight(data_dir, "doctor")
    assert found.exit_code == 1
    assert f"error: event store table events: part {filled.name} fails its check: " in (
        found.output
    )
    assert "Checksum mismatch for file data.bin" in found.output
    assert "hint: searches that read it fail: `hubsight doctor --set-aside`" in found.output

    aside = _hubsight(data_dir, "doctor", "--set-aside", "--json")
    assert aside.exit_code == 1
    findings = json.loads(aside.output)
    assert [f["message"].split(":")[0] for f in findings if not f["ok"]] == [
        f"part {filled.name} fails its check; set aside (listed below)",
        "100 events of 2026-03-04 set aside as damaged (broken)",
    ]
    after = _hubsight(data_dir, "status", "--json")
    assert after.exit_code == 0, after.output
    report = json.loads(after.output)
    assert report["sources"][0]["events_stored"] == 100
    ((part),) = report["damaged_parts"]
    assert (part["name"], part["reason"], part["events"]) == (
        f"broken_{filled.name}",
        "broken",
        100,
    )
    text = _hubsight(data_dir, "status").output
    assert "event store: 100 events of 2026-03-04 set aside as damaged (broken): " in text
    assert "  hint: `hubsight doctor` checks the data directory" in text
    # A second look finds every table sound, and still the part set aside.
    again = _hubsight(data_dir, "doctor")
    assert "ok: event store: CHECK TABLE passed (3 tables)" in again.output
    assert again.exit_code == 1


def test_a_part_cut_short_is_named_and_stays_aside_when_it_cannot_be_reattached(
    data_dir: Path, filled: Path
) -> None:
    os.truncate(filled / "data.bin", 100)
    found = _hubsight(data_dir, "doctor")
    assert found.exit_code == 1
    aside = filled.parent / "detached" / f"broken-on-start_{filled.name}"
    assert (
        "error: event store table events: 100 events of 2026-03-04 set aside as damaged "
        f"(broken-on-start): {aside}\n"
        "hint: `hubsight doctor --reattach` gives it back to its table if its files are whole"
    ) in found.output
    refused = _hubsight(data_dir, "doctor", "--reattach")
    assert refused.exit_code == 1
    assert "; it cannot be reattached: event store query failed: " in refused.output
    assert "data.bin has unexpected size: 100 instead of" in refused.output
    assert aside.is_dir()


def test_while_run_holds_the_store_the_parts_it_found_damaged_are_named(
    data_dir: Path, filled: Path
) -> None:
    part = {
        "table": "events",
        "name": "broken-on-start_all_1_1_0",
        "reason": "broken-on-start",
        "path": "/data/detached/broken-on-start_all_1_1_0",
        "events": 100,
        "first_day": "2026-03-04",
        "last_day": "2026-03-05",
    }
    catalog = Catalog(data_dir)
    settings = StoreSettings.resolve(data_dir)
    running = examine(data_dir, settings, running=True)
    assert [(f.subject, f.ok) for f in running[-1:]] == [("event store", True)]
    catalog.save_damaged_parts([part])
    (finding,) = [f for f in examine(data_dir, settings, running=True) if not f.ok]
    assert finding.message == (
        "100 events of 2026-03-04 to 2026-03-05 set aside as damaged (broken-on-start): "
        "/data/detached/broken-on-start_all_1_1_0"
    )
    assert finding.hint.startswith("stop `hubsight run`, then `hubsight doctor --reattach`")
