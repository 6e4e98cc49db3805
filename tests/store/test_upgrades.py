"""Data directories written by earlier releases open, migrate and keep working; a directory a
newer release wrote is refused with a clear message.

``tests/data/datadirs/schema-N.tar.gz`` were written by the commits named in
``scripts/make-upgrade-fixture.py``'s usage (schema-1: a2063f9, the first release with the
collector, events migration 1; schema-3: 6fdcd77, migrations 1-3 and console users, before the
``authentication_protocol`` column), each running its own code. Rows a fixture lacks (a saved
query, an API token) are written into it in that release's columns before the upgrade.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from chdb import session as chdb_session
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.errors import ForbiddenError, StoreError
from hubsight.parsing.event import Event, LogSet
from hubsight.query.saved import delete_saved, list_saved
from hubsight.query.search import SearchRequest, search
from hubsight.sources.config import KafkaProfile
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.catalog import CATALOG_FILE, CATALOG_VERSION, Catalog
from hubsight.store.schema import COMPACT_PARTS, MERGE_PARTS, MIGRATIONS, event_columns
from hubsight.store.users import DEFAULT_TOKEN_DAYS, Account, TokenEnded, UserStore, token_id

from tests.support import FAST_HASH, Clock

FIXTURES = Path(__file__).parents[1] / "data/datadirs"


def _unpack(name: str, into: Path) -> Path:
    with tarfile.open(FIXTURES / f"{name}.tar.gz") as archive:
        archive.extractall(into, filter="data")
    return into / "data"


@pytest.mark.parametrize("fixture", ["schema-1", "schema-3"])
def test_an_old_data_directory_opens_migrates_and_keeps_working(
    fixture: str, tmp_path: Path
) -> None:
    data_dir = _unpack(fixture, tmp_path)
    store = open_store(StoreSettings(data_dir=data_dir))
    try:
        versions = [r["version"] for r in store.select("SELECT version FROM hubsight_migrations")]
        assert sorted(versions) == [version for version, _, _ in MIGRATIONS]
        columns = {
            r["name"]
            for r in store.select(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                "AND table = 'events'"
            )
        }
        assert columns == {name for name, _ in event_columns()}
        (table,) = store.select(
            "SELECT engine_full FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'events'"
        )
        assert COMPACT_PARTS in table["engine_full"]
        assert MERGE_PARTS in table["engine_full"]
        # The events stored before the entity projections existed are projected too.
        projected = store.select(
            "SELECT name, toInt64(sum(rows)) AS n FROM system.projection_parts "
            "WHERE table = 'events' AND active GROUP BY name"
        )
        assert {r["name"]: r["n"] for r in projected} == {
            "by_user": 4,
            "by_resource": 4,
            "users_daily": 1,
            "addresses_daily": 1,
        }
        rows = store.select(
            "SELECT JSONExtractInt(raw, 'n') AS n, log_set, authentication_protocol AS protocol "
            "FROM events ORDER BY n"
        )
        assert [(r["n"], r["log_set"], r["protocol"]) for r in rows] == [
            (0, "Ingress Authentication", ""),
            (1, "Ingress Authentication", ""),
            (2, "Ingress Authentication", ""),
            (3, "Unparsed Data", ""),
        ]
        # The collector's guard still knows what was stored: re-delivery is skipped.
        assert store.stored_offsets("relay") == {("insights-operational-logs", 0): 3}
        store.write(
            [
                Event(
                    timestamp=datetime(2026, 1, 5, 10, tzinfo=UTC),
                    log_set=LogSet.INGRESS_AUTHENTICATION,
                    log_name="relay",
                    raw=msgspec.Raw(json.dumps({"n": 4}).encode()),
                    authentication_protocol="deviceCode",
                )
            ]
        )
        found = search(
            store,
            SearchRequest(query="groupby(log_set)", start="2026-01-01", end="2026-02-01"),
        ).to_json()
        assert found["rows"] == [["Ingress Authentication", 4], ["Unparsed Data", 1]]
    finally:
        store.close()
    profile = Catalog(data_dir).get("relay").profile
    assert isinstance(profile, KafkaProfile)
    password = profile.password
    assert password is not None
    assert password.get_secret_value() == "fixture-password"
    if fixture == "schema-3":
        assert UserStore(data_dir, hasher=FAST_HASH).check_password("root", "fixture passphrase")


def test_saved_queries_from_before_owners_stay_seen_by_all_and_become_the_admins(
    tmp_path: Path,
) -> None:
    data_dir = _unpack("schema-3", tmp_path)
    # A query saved by the schema-3 release, in that release's columns (no owner, no sharing).
    old = chdb_session.Session(str(data_dir / "clickhouse"))
    try:
        old.query(
            "INSERT INTO saved_queries (id, name, query, scope, created_at, updated_at, version, "
            "deleted) VALUES ('q1', 'old', 'corp', '{}', now64(3), now64(3), 1, false)"
        )
    finally:
        old.close()
    analyst, admin = Account("ana", "analyst"), Account("root", "admin")
    store = open_store(StoreSettings(data_dir=data_dir))
    try:
        (found,) = list_saved(store, analyst)
        assert (found.name, found.owner, found.shared) == ("old", "", True)
        with pytest.raises(ForbiddenError, match="belongs to an admin"):
            delete_saved(store, "q1", analyst)
        assert delete_saved(store, "q1", admin).name == "old"
        assert list_saved(store, admin) == []
    finally:
        store.close()


def test_api_tokens_from_before_expiry_last_the_default_lifetime_from_the_upgrade(
    tmp_path: Path,
) -> None:
    data_dir = _unpack("schema-3", tmp_path)
    secret = "hs_issued-by-the-schema-3-release"
    # A token as the schema-3 release stored it: no expiry, no last use, no revocation.
    with sqlite3.connect(data_dir / CATALOG_FILE) as db:
        db.execute(
            "INSERT INTO api_tokens (token_hash, name, label, created_at) VALUES (?, ?, ?, ?)",
            (hashlib.sha256(secret.encode()).hexdigest(), "root", "old script", 1.0),
        )
    db.close()
    clock = Clock()
    upgraded_at = clock.now
    users = UserStore(data_dir, hasher=FAST_HASH, clock=clock)
    assert users.token_account(secret) == Account("root", "admin")
    assert users.token(token_id(secret)).expires_at == upgraded_at + DEFAULT_TOKEN_DAYS * 86400
    clock.now = upgraded_at + DEFAULT_TOKEN_DAYS * 86400
    ended = UserStore(data_dir, hasher=FAST_HASH, clock=clock).token_account(secret)
    assert isinstance(ended, TokenEnded)
    assert ended.reason == "expired"
    with sqlite3.connect(data_dir / CATALOG_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == CATALOG_VERSION
    db.close()


def test_a_store_written_by_a_newer_release_is_refused(tmp_path: Path) -> None:
    data_dir = _unpack("schema-3", tmp_path)
    store = open_store(StoreSettings(data_dir=data_dir))
    store.execute("INSERT INTO hubsight_migrations (version, name) VALUES (999, 'future')")
    store.close()
    with pytest.raises(StoreError) as caught:
        open_store(StoreSettings(data_dir=data_dir))
    assert "has schema version 999" in caught.value.message
    assert "written by a newer hubsight" in caught.value.message
    assert "downgrades are not supported" in caught.value.hint
    # The refused store let go of the engine: this process can open another data directory.
    other = open_store(StoreSettings(data_dir=tmp_path / "other"))
    other.close()
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "search", "", "--last", "1d"])
    assert result.exit_code == 1
    assert "error: the event store in" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("database", ["hubsight.sqlite3", "detect.sqlite3"])
def test_sqlite_files_written_by_a_newer_release_are_refused(database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with sqlite3.connect(data_dir / database) as db:
        db.execute("PRAGMA user_version = 7")
    db.close()
    commands = (
        [["source", "list"], ["users", "list"]]
        if database == "hubsight.sqlite3"
        else [["alerts", "list"]]
    )
    for command in commands:
        result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *command])
        assert result.exit_code == 1, result.output
        assert f"{database} has schema version 7" in result.output
        assert "hint: run that release or a newer one" in result.output
