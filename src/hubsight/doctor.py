"""``hubsight doctor``: checks a data directory's files and says how to recover what is damaged.

Checked: the secret key (a Fernet key, readable by its owner only, and the one the stored
secrets were encrypted with), each SQLite file (``PRAGMA integrity_check``), the audit trail
(its hash chain, HMAC-sealed head and append-only triggers, as ``hubsight audit verify``), and
the event store (``CHECK TABLE`` of every table, and the parts ClickHouse set aside as damaged
when it opened the store). Nothing is changed, except with ``reattach``: then each set-aside
part is offered back to its table, which takes it only if its files are whole.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from hubsight.detect.db import DB_NAME
from hubsight.errors import ConfigError, StoreError
from hubsight.store.audit import TRIGGERS, verify_trail
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.base import EventStore
from hubsight.store.catalog import CATALOG_FILE, Catalog
from hubsight.store.damage import DamagedPart, damaged_parts, reattach, set_aside
from hubsight.store.vault import KEY_ENV, KEY_FILE, Vault

_RESTORE = (
    "restore a `hubsight backup` into a new data directory (`hubsight --data-dir NEW restore "
    "BACKUP`)"
)
_RESTORE_ = _RESTORE[0].upper() + _RESTORE[1:]
# What each SQLite file holds, for the hint when one is damaged.
_SQLITE = {
    CATALOG_FILE: "event sources, their encrypted secrets, users and retention",
    DB_NAME: "alerts, investigations and detection state",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result: what was checked, whether it is sound, and what to do if not."""

    subject: str
    ok: bool
    message: str
    hint: str = ""

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready copy for ``doctor --json``."""
        return {"subject": self.subject, "ok": self.ok, "message": self.message, "hint": self.hint}


def examine(
    data_dir: Path,
    store: StoreSettings,
    *,
    running: bool,
    reattach_parts: bool = False,
    set_aside_failing: bool = False,
) -> list[Finding]:
    """Every check of ``data_dir``; the event store only when no ``hubsight run`` holds it.

    ``set_aside_failing`` detaches the parts that fail ``CHECK TABLE`` (a query that reads one
    fails), as ClickHouse sets aside a part it finds broken; ``reattach_parts`` offers every
    set-aside part back to its table."""
    findings = [_key(data_dir)]
    findings += [_sqlite(data_dir / name, holds) for name, holds in _SQLITE.items()]
    findings.append(_audit_trail(data_dir))
    if running:
        findings.append(
            Finding(
                "event store",
                True,
                "not checked: `hubsight run` holds it",
                "stop it and run `hubsight doctor` again to check the events",
            )
        )
        findings += _damaged_at_start(data_dir)
    else:
        findings += _events(
            store, reattach_parts=reattach_parts, set_aside_failing=set_aside_failing
        )
    return findings


def _key(data_dir: Path) -> Finding:
    path = data_dir / KEY_FILE
    if os.environ.get(KEY_ENV):
        subject, raw = f"secret key (${KEY_ENV})", os.environ[KEY_ENV].encode()
    elif not path.exists():
        return Finding(f"secret key ({path})", True, "none yet: made when a secret is stored")
    else:
        subject = f"secret key ({path})"
        try:
            raw = path.read_bytes().strip()
        except OSError as exc:
            return Finding(subject, False, f"cannot be read: {exc.strerror}", _KEY_HINT)
        if path.stat().st_mode & 0o077:
            return Finding(
                subject, False, "readable by others", f"make it its owner's only: chmod 600 {path}"
            )
    try:
        Fernet(raw)
    except ValueError:
        return Finding(subject, False, "not a Fernet key (32 url-safe base64 bytes)", _KEY_HINT)
    if (data_dir / CATALOG_FILE).exists():
        try:
            # Decrypts every stored secret: the key must be the one they were stored with.
            sources = len(Catalog(data_dir).all())
        except ConfigError as exc:
            return Finding(subject, False, exc.message, exc.hint)
        except StoreError:
            # The catalog's own finding says what is wrong with it.
            return Finding(subject, True, "a valid key (the stored secrets could not be read)")
        return Finding(subject, True, f"decrypts the secrets of {sources} event source(s)")
    return Finding(subject, True, "a valid key")


_KEY_HINT = (
    f"put back the key the secrets were stored with (from `hubsight backup`: {KEY_FILE}), "
    "or remove it and enter the event sources' secrets again"
)


def _sqlite(path: Path, holds: str) -> Finding:
    if not path.exists():
        return Finding(path.name, True, "none yet")
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
        finally:
            db.close()
    except sqlite3.Error as exc:
        rows = [str(exc)]
    if rows == ["ok"]:
        return Finding(path.name, True, "integrity check passed")
    return Finding(
        path.name,
        False,
        f"damaged: {'; '.join(rows[:3])}",
        f"it holds the {holds}. With hubsight stopped, {_RESTORE} and copy NEW/{path.name} "
        f"here, or save what is readable: `sqlite3 {path} .recover > {path.stem}.sql`",
    )


def _audit_trail(data_dir: Path) -> Finding:
    """The trail's hash chain and sealed head, as `hubsight audit verify` checks them, and its
    append-only triggers; read only, so the key is not made and no trigger is put back. Each
    problem is named (breaks between entries: the first three and how many more), none hidden
    behind another: a missing key, an edit and a dropped trigger are all said."""
    subject, path = "audit trail", data_dir / CATALOG_FILE
    if not path.exists():
        return Finding(subject, True, "none yet")
    unsealed: tuple[str, str] | None = None
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "audit_log" not in names:
                return Finding(subject, True, "none yet")
            vault: Vault | None = None
            if not (os.environ.get(KEY_ENV) or (data_dir / KEY_FILE).exists()):
                unsealed = ("its sealed head cannot be checked: no secret key", _KEY_HINT)
            else:
                try:
                    vault = Vault(data_dir)
                except ConfigError as exc:
                    unsealed = (f"its sealed head cannot be checked: {exc}", exc.hint)
            found = verify_trail(db, vault)
        finally:
            db.close()
    except sqlite3.Error as exc:
        return Finding(subject, False, f"cannot be read: {exc}", f"see {CATALOG_FILE} above")
    dropped = [t for t in TRIGGERS if t not in names]
    entries = [p for p in found.problems if p.startswith("entry ")]
    if len(entries) > 3:
        entries[3:] = [f"{len(entries) - 3} more breaks between entries"]
    broken = [
        *entries,
        *(p for p in found.problems if not p.startswith("entry ")),
        *(f"append-only trigger {t} was dropped" for t in dropped),
    ]
    said = [f"changed by hand: {'; '.join(broken)}"] if broken else []
    hints = []
    if broken:
        hints.append(
            "`hubsight audit verify` lists every break. The trail cannot be mended: keep this "
            "file as evidence, and compare it with a `hubsight backup` to see what was changed"
            + (" (the next `hubsight run` puts the triggers back)" if dropped else "")
        )
    if unsealed is not None:
        said.append(unsealed[0])
        hints.append(unsealed[1])
    if said:
        return Finding(subject, False, "; ".join(said), "; ".join(hints))
    began = f" since {found.began}" if found.began else ""
    return Finding(
        subject, True, f"{found.count} entries{began}: hash chain and sealed head intact"
    )


def _events(
    settings: StoreSettings, *, reattach_parts: bool, set_aside_failing: bool
) -> list[Finding]:
    if settings.scheme == "embedded" and not (settings.data_dir / "clickhouse").exists():
        return [Finding("event store", True, "none yet")]
    try:
        store = open_store(settings)
    except StoreError as exc:
        return [Finding("event store", False, exc.message, exc.hint or _RESTORE)]
    try:
        findings = _check_tables(store, set_aside_failing)
        for part in damaged_parts(store):
            findings.append(_damaged(store, part, reattach_parts))
    except StoreError as exc:
        findings = [Finding("event store", False, exc.message, exc.hint)]
    finally:
        store.close()
    return findings


def _damaged_at_start(data_dir: Path) -> list[Finding]:
    """The damaged parts the running service found when it started (the catalog's copy)."""
    try:
        parts = Catalog(data_dir).load_damaged_parts()
    except StoreError:
        return []  # the catalog's own finding says what is wrong with it
    return [
        Finding(
            f"event store table {part['table']}",
            False,
            DamagedPart.from_json(part).summary(),
            "stop `hubsight run`, then `hubsight doctor --reattach` gives it back if its files "
            f"are whole; otherwise {_RESTORE}, or import those days again",
        )
        for part in parts
    ]


def _check_tables(store: EventStore, set_aside_failing: bool) -> list[Finding]:
    tables = store.select(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree' ORDER BY name"
    )
    findings = []
    for table in tables:
        name = table["name"]
        for row in store.select(f"CHECK TABLE `{name}`"):
            if row["is_passed"]:
                continue
            part, problem = row["part_path"], f"part {row['part_path']} fails its check"
            if set_aside_failing:
                set_aside(store, name, part)
                problem += "; set aside (listed below)"
                hint = ""
            else:
                hint = (
                    "searches that read it fail: `hubsight doctor --set-aside` takes it out of "
                    f"the table, keeping its files; {_RESTORE} to get its events back"
                )
            findings.append(
                Finding(f"event store table {name}", False, f"{problem}: {row['message']}", hint)
            )
    if not findings:
        findings.append(Finding("event store", True, f"CHECK TABLE passed ({len(tables)} tables)"))
    return findings


def _damaged(store: EventStore, part: DamagedPart, reattach_parts: bool) -> Finding:
    subject = f"event store table {part.table}"
    if reattach_parts:
        try:
            reattach(store, part)
        except StoreError as exc:
            return Finding(
                subject,
                False,
                f"{part.summary()}; it cannot be reattached: {exc.message}",
                f"{_RESTORE_}, or import those days again; then move the part's directory away",
            )
        return Finding(subject, True, f"reattached {part.name}: its events are back")
    return Finding(
        subject,
        False,
        part.summary(),
        "`hubsight doctor --reattach` gives it back to its table if its files are whole; "
        f"otherwise {_RESTORE}, or import those days again; then move the part's directory away",
    )
