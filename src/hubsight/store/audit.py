"""The audit trail of hubsight itself: who signed in, changed or exported what, when, from where.

Entries are rows of ``audit_log`` in the catalog's SQLite file (so backups carry them and
retention never touches them), appended by the console, the API and the CLI alike. Triggers
refuse UPDATE and DELETE. Each entry's ``hash`` is SHA-256 over the previous entry's hash and
the entry's canonical JSON (sorted keys, no spaces, ASCII), so an entry edited, deleted or moved
in place breaks the chain there. ``audit_head`` holds the count and the last hash, sealed with
an HMAC under the secret key (``Vault.seal``), so entries cut from the end are seen too.

What ``verify`` cannot see: a trail rewritten whole by someone who also holds the secret key
(keep ``$HUBSIGHT_SECRET_KEY`` outside the data directory when that matters), and a trail
removed whole, both tables, which starts again empty (``verify`` prints when it began).

Details never hold secret values: callers pass the public views of what changed, and
``scrubbed`` replaces any value under a secret-looking key on the way in.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from hubsight.errors import StoreError
from hubsight.store.catalog import CATALOG_FILE, CATALOG_VERSION
from hubsight.store.sqlite import claim_version, connect
from hubsight.store.vault import Vault

Outcome = Literal["ok", "failed", "denied"]
GENESIS = "0" * 64
_APPEND_ONLY = "the audit trail is append-only"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    via TEXT NOT NULL,
    address TEXT,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, seq);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, seq);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    hash TEXT NOT NULL,
    seal TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_forward BEFORE UPDATE ON audit_head
WHEN NEW.count <> OLD.count + 1 BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END;
"""
# The triggers that keep the trail append-only, by name (``hubsight doctor`` checks they are there).
TRIGGERS = tuple(re.findall(r"CREATE TRIGGER IF NOT EXISTS (\w+)", _SCHEMA))
_COLUMNS = "seq, at, actor, via, address, action, target, outcome, details, prev_hash, hash"
# Fixed column names only: every value is bound.
_INSERT = f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join('?' * 11)})"  # noqa: S608
# Keys whose values are secrets wherever they appear in details (a webhook's url is one).
_SECRET_KEY = re.compile(r"pass|secret|token|connection_string|auth_header|^url$", re.I)
# What public views show in a secret's place: safe to keep.
_SECRET_STATES = frozenset({"(set)", "set", "not set", "(changed)", "(secret)"})
_CLI_ACTOR = re.compile(r"^cli:[A-Za-z0-9._@-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit entry: who did what to which object, when, from where, and how it ended."""

    seq: int
    at: str
    actor: str
    via: str
    address: str | None
    action: str
    target: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """As JSON for the API and ``hubsight audit --json``."""
        return {name: getattr(self, name) for name in _COLUMNS.split(", ")}


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to list: newest first, before ``before`` (a seq) for the next page."""

    actor: str | None = None
    # An action, or its family: "source" matches "source.create" and "source.update".
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` found: how many entries, since when, and each break in the chain."""

    count: int
    began: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain holds from the first entry to the sealed head."""
        return not self.problems


def cli_actor() -> str:
    """Who runs this command, as the trail names a command-line change: ``cli:<OS user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return f"cli:uid{os.getuid()}"


def is_cli_actor(text: str) -> bool:
    """Whether ``text`` is a well-formed ``cli:<user>`` (what the CLI sends over the socket)."""
    return bool(_CLI_ACTOR.match(text))


def stamp(moment: datetime) -> str:
    """A time as the trail stores it: UTC, microseconds, ``Z``; such texts sort by time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def scrubbed(value: Any, secret: bool = False) -> Any:
    """``value`` with everything under a secret-looking key replaced by ``(secret)``."""
    if isinstance(value, dict):
        return {
            str(k): scrubbed(v, secret or bool(_SECRET_KEY.search(str(k))))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrubbed(v, secret) for v in value]
    if secret and value is not None and value not in _SECRET_STATES:
        return "(secret)"
    return value


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """Each field that differs, nested ones by dotted name: ``{field: [before, after]}``."""
    changed: dict[str, list[Any]] = {}
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        # An object made or removed whole is listed field by field, as an edit is.
        if isinstance(old, dict | None) and isinstance(new, dict | None) and (old or new):
            changed |= {f"{name}.{k}": v for k, v in changes(old or {}, new or {}).items()}
        elif old != new:
            changed[name] = [old, new]
    return changed


def _canonical(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _hash(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(f"{prev_hash}\n{_canonical(row)}".encode()).hexdigest()


def _head_text(count: int, head: str) -> str:
    return f"audit head {count} {head}"


class AuditLog:
    """The append-only, hash-chained trail in ``<data_dir>/hubsight.sqlite3``."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / CATALOG_FILE
        self._clock = clock
        self._vault = Vault(data_dir)
        with self._connect() as db:
            claim_version(db, self.path, CATALOG_VERSION)
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO audit_head (id, count, hash, seal) VALUES (1, 0, ?, ?)",
                (GENESIS, self._vault.seal(_head_text(0, GENESIS))),
            )

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.path)

    def record(
        self,
        *,
        actor: str,
        action: str,
        via: str,
        address: str | None = None,
        target: str | None = None,
        outcome: Outcome = "ok",
        details: dict[str, Any] | None = None,
    ) -> Entry:
        """Append one entry (its details scrubbed of secrets) and move the sealed head on."""
        at = stamp(datetime.fromtimestamp(self._clock(), UTC))
        # Round-tripped through JSON so the entry hashed is exactly the one read back.
        clean = json.loads(_canonical(scrubbed(details or {})))
        with self._connect() as db:
            # The write lock orders appends from the CLI and `hubsight run` into one chain.
            db.execute("BEGIN IMMEDIATE")
            try:
                found = db.execute("SELECT count, hash FROM audit_head WHERE id = 1").fetchone()
                if found is None:
                    raise sqlite3.IntegrityError("the head record is missing")
                count, head = found
                row = {
                    "seq": count + 1,
                    "at": at,
                    "actor": actor,
                    "via": via,
                    "address": address,
                    "action": action,
                    "target": target,
                    "outcome": outcome,
                    "details": clean,
                }
                entry = Entry(**row, prev_hash=head, hash=_hash(head, row))
                stored = {"details": _canonical(clean), "prev_hash": head, "hash": entry.hash}
                values = row | stored
                db.execute(_INSERT, tuple(values[name] for name in _COLUMNS.split(", ")))
                db.execute(
                    "UPDATE audit_head SET count = ?, hash = ?, seal = ? WHERE id = 1",
                    (entry.seq, entry.hash, self._vault.seal(_head_text(entry.seq, entry.hash))),
                )
            except sqlite3.IntegrityError as exc:
                db.execute("ROLLBACK")
                raise StoreError(
                    f"the audit trail's head does not match its entries ({exc})",
                    hint="run `hubsight audit verify` to see where the trail was changed",
                ) from exc
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return entry

    def entries(self, flt: AuditFilter | None = None) -> list[Entry]:
        """The entries ``flt`` selects, newest first."""
        flt = flt or AuditFilter()
        where: list[str] = []
        args: list[str | int] = []
        if flt.actor:
            where.append("actor = ?")
            args.append(flt.actor)
        if flt.action:
            where.append("(action = ? OR substr(action, 1, ?) = ?)")
            args += [flt.action, len(flt.action) + 1, f"{flt.action}."]
        for column, op, moment in (("at", ">=", flt.since), ("at", "<", flt.until)):
            if moment is not None:
                where.append(f"{column} {op} ?")
                args.append(stamp(moment))
        if flt.before is not None:
            where.append("seq < ?")
            args.append(flt.before)
        # Only fixed column names and ``?`` placeholders are formatted into the text.
        sql = f"SELECT {_COLUMNS} FROM audit_log"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._connect() as db:
            rows = db.execute(f"{sql} ORDER BY seq DESC LIMIT ?", (*args, flt.limit)).fetchall()
        return [_entry(row) for row in rows]

    def verify(self) -> Verification:
        """Walk the chain from the first entry to the sealed head; every break is a problem."""
        with self._connect() as db:
            return verify_trail(db, self._vault)


def _entry(row: tuple[Any, ...]) -> Entry:
    values = dict(zip(_COLUMNS.split(", "), row, strict=True))
    try:
        values["details"] = json.loads(values["details"])
    except ValueError:
        # An entry edited by hand into bad JSON: shown as text, and verify names it.
        values["details"] = {"unreadable": values["details"]}
    return Entry(**values)


def verify_trail(db: sqlite3.Connection, vault: Vault | None) -> Verification:
    """Walk the chain in ``db`` from the first entry to the head sealed with ``vault``'s key
    (without a key, all but the head's seal).

    It only reads, so ``hubsight doctor`` runs it over a read-only connection.
    """
    problems: list[str] = []
    head_row = db.execute("SELECT count, hash, seal FROM audit_head WHERE id = 1").fetchone()
    began = db.execute("SELECT at FROM audit_log ORDER BY seq LIMIT 1").fetchone()
    expected, prev = 1, GENESIS
    for entry in _walk(db):
        if entry.seq != expected:
            problems.append(
                f"entry {entry.seq}: entries {expected}..{entry.seq - 1} are missing (deleted)"
            )
        if entry.prev_hash != prev:
            problems.append(
                f"entry {entry.seq}: its previous hash does not match the entry before "
                "it (an entry before it was deleted, inserted, moved or rewritten)"
            )
        row = {k: getattr(entry, k) for k in _COLUMNS.split(", ")[:-2]}
        if _hash(entry.prev_hash, row) != entry.hash:
            problems.append(f"entry {entry.seq}: its content does not match its hash (edited)")
        expected, prev = entry.seq + 1, entry.hash
    count = expected - 1
    problems += _check_head(vault, head_row, count, prev)
    return Verification(count=count, began=began[0] if began else None, problems=problems)


def _check_head(vault: Vault | None, head_row: Any, count: int, last_hash: str) -> list[str]:
    if head_row is None:
        return ["the head record is missing (removed by hand): the end cannot be checked"]
    head_count, head_hash, seal = head_row
    problems = []
    if vault is not None and vault.seal(_head_text(head_count, head_hash)) != seal:
        problems.append(
            "the head's seal does not match: it was rewritten, or the secret key changed"
        )
    if head_count > count:
        problems.append(
            f"the head records {head_count} entries but the trail ends at {count}: "
            f"entries {count + 1}..{head_count} were cut from the end"
        )
    elif head_count < count or head_hash != last_hash:
        problems.append(
            f"the last entry ({count}) is not the one the head records ({head_count}): "
            "entries were added or rewritten by hand"
        )
    return problems


def _walk(db: sqlite3.Connection) -> Iterator[Entry]:
    cursor = db.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")  # noqa: S608
    while batch := cursor.fetchmany(1000):
        yield from (_entry(row) for row in batch)
