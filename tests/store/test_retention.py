"""Retention per log set: the policy, its TTL on the events table, the CLI and the API.

ClickHouse judges expiry by its own clock, so the test controls the other side: each event's
time is placed just inside or just outside its log set's retention, measured from the moment
the test takes as now. A new policy is applied to stored parts by a background mutation, which
the tests wait for (no merge is forced: the stored parts must be rewritten by the policy alone).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from hubsight.cli.main import cli
from hubsight.errors import ConfigError
from hubsight.parsing.event import Event, LogSet
from hubsight.service import Service
from hubsight.store import retention
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.base import EventStore
from hubsight.store.catalog import Catalog
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth

from tests.support import FAST_HASH

UNPARSED = LogSet.UNPARSED_DATA.value
SIGN_INS = LogSet.INGRESS_AUTHENTICATION.value
ADMIN = LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY.value


@pytest.fixture
def store(data_dir: Path) -> Iterator[EventStore]:
    opened = open_store(StoreSettings(data_dir=data_dir))
    yield opened
    opened.close()


def _event(log_set: str, age: timedelta, label: str, now: datetime) -> Event:
    return Event(
        timestamp=now - age,
        log_set=LogSet(log_set),
        log_name="azure",
        raw=msgspec.Raw(json.dumps({"label": label}).encode()),
    )


def _kept(store: EventStore) -> list[str]:
    deadline = time.monotonic() + 60
    while store.select("SELECT 1 FROM system.mutations WHERE table = 'events' AND NOT is_done"):
        assert time.monotonic() < deadline, "the retention rewrite did not finish in 60 s"
        time.sleep(0.05)
    rows = store.select("SELECT JSONExtractString(raw, 'label') AS label FROM events ORDER BY 1")
    return [row["label"] for row in rows]


HOUR = timedelta(hours=1)
TABLE = (
    "SELECT engine_full FROM system.tables WHERE name = 'events' AND database = currentDatabase()"
)


def test_each_log_set_loses_its_events_just_after_its_days(store: EventStore) -> None:
    now = datetime.now(UTC)
    store.write(
        [
            _event(UNPARSED, timedelta(days=14) - HOUR, "unparsed-13d23h", now),
            _event(UNPARSED, timedelta(days=14) + HOUR, "unparsed-14d1h", now),
            _event(SIGN_INS, timedelta(days=14) + HOUR, "signin-14d1h", now),
            _event(SIGN_INS, timedelta(days=90) - HOUR, "signin-89d23h", now),
            _event(SIGN_INS, timedelta(days=90) + HOUR, "signin-90d1h", now),
            _event(ADMIN, timedelta(days=31), "admin-31d", now),
        ]
    )
    assert retention.apply(store, retention.default_policy()) is True
    assert _kept(store) == ["admin-31d", "signin-14d1h", "signin-89d23h", "unparsed-13d23h"]
    # The same policy again changes nothing (no rewrite of the stored parts).
    assert retention.apply(store, retention.default_policy()) is False
    # Shortening one log set applies to what is stored already, and to that log set only.
    shorter = retention.default_policy() | {SIGN_INS: 30}
    assert retention.apply(store, shorter) is True
    assert _kept(store) == ["admin-31d", "signin-14d1h", "unparsed-13d23h"]


def test_the_longest_retention_and_dates_past_2106_keep_their_events(store: EventStore) -> None:
    # A 32-bit DateTime ends in 2106: today + MAX_DAYS, or a clock skewed past 2106, wrapped
    # round to the past and every such event expired at the first merge.
    now = datetime.now(UTC)
    store.write(
        [
            _event(ADMIN, timedelta(0), "admin-now", now),
            _event(ADMIN, -timedelta(days=365 * 90), "admin-in-90-years", now),
            _event(ADMIN, timedelta(days=retention.MAX_DAYS) - HOUR, "admin-just-inside", now),
            _event(ADMIN, timedelta(days=retention.MAX_DAYS) + HOUR, "admin-just-outside", now),
        ]
    )
    assert retention.apply(store, retention.default_policy() | {ADMIN: retention.MAX_DAYS})
    assert _kept(store) == ["admin-in-90-years", "admin-just-inside", "admin-now"]


def test_the_policy_defaults_and_refuses_what_cannot_be_used(data_dir: Path) -> None:
    catalog = Catalog(data_dir)
    policy = catalog.retention()
    assert policy[UNPARSED] == 14
    assert {days for name, days in policy.items() if name != UNPARSED} == {90}
    assert set(policy) == {s.value for s in LogSet}
    catalog.set_retention(SIGN_INS, 1)
    catalog.set_retention(ADMIN, retention.MAX_DAYS)
    assert catalog.retention()[SIGN_INS] == 1
    assert catalog.retention()[ADMIN] == retention.MAX_DAYS
    for days in (0, -5, retention.MAX_DAYS + 1):
        with pytest.raises(ConfigError) as caught:
            catalog.set_retention(SIGN_INS, days)
        assert "from 1 to 36500" in caught.value.hint
    with pytest.raises(ConfigError) as caught:
        catalog.set_retention("Sign-ins", 30)
    assert "'Sign-ins'" in caught.value.message
    assert "'Ingress Authentication'" in caught.value.hint
    assert catalog.retention()[SIGN_INS] == 1


def test_the_service_applies_a_changed_policy_once(store: EventStore, data_dir: Path) -> None:
    catalog = Catalog(data_dir)
    service = Service(data_dir, store, catalog)
    service.apply_retention()
    (table,) = store.select(TABLE)
    assert "toIntervalDay(14) WHERE log_set = 'Unparsed Data'" in table["engine_full"]
    catalog.set_retention(UNPARSED, 7)
    service.apply_retention()
    (table,) = store.select(TABLE)
    assert "toIntervalDay(7) WHERE log_set = 'Unparsed Data'" in table["engine_full"]


def test_api_lists_disk_per_log_set_and_only_admins_change_it(
    store: EventStore, data_dir: Path
) -> None:
    now = datetime.now(UTC)
    store.write([_event(SIGN_INS, HOUR * n, f"s{n}", now) for n in range(3)])
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("root", "admin passphrase!", "admin")
    users.create("ana", "analyst passphrase", "analyst")
    admin = {"Authorization": f"Bearer {users.issue_token('root', 't')}"}
    analyst = {"Authorization": f"Bearer {users.issue_token('ana', 't')}"}
    service = Service(data_dir, store, Catalog(data_dir))
    client = TestClient(create_app(service, auth=ConsoleAuth(users)))
    rows = {r["log_set"]: r for r in client.get("/api/v1/retention", headers=analyst).json()}
    assert rows[SIGN_INS]["events"] == 3
    assert rows[SIGN_INS]["days"] == 90
    assert rows[SIGN_INS]["bytes_on_disk"] > 0
    assert rows[UNPARSED] == {"log_set": UNPARSED, "days": 14, "events": 0, "bytes_on_disk": 0}
    url = f"/api/v1/retention/{UNPARSED}"
    assert client.put(url, json={"days": 7}, headers=analyst).status_code == 403
    refused = client.put(url, json={"days": 0}, headers=admin)
    assert refused.status_code == 400
    assert "from 1 to 36500" in refused.json()["hint"]
    assert client.put(url, json={"days": 7}, headers=admin).json() == {
        "log_set": UNPARSED,
        "days": 7,
    }
    assert Catalog(data_dir).retention()[UNPARSED] == 7
    assert "Disk (estimated)" in client.get("/sources", headers=analyst).text


def test_cli_sets_and_lists_retention(data_dir: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), "retention"]
    done = runner.invoke(cli, [*base, "set", UNPARSED, "7"])
    assert done.exit_code == 0, done.output
    assert "Unparsed Data: events kept 7 days" in done.output
    listed = runner.invoke(cli, [*base, "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {r["log_set"]: r["days"] for r in json.loads(listed.output)}[UNPARSED] == 7
    bad = runner.invoke(cli, [*base, "set", "Nope", "7"])
    assert bad.exit_code == 2
    assert "error: there is no log set 'Nope'" in bad.output


def test_a_new_policy_returns_at_once_and_rewrites_in_the_background(store: EventStore) -> None:
    # Rewriting a store of millions of events takes minutes; the service's loop must not wait
    # for it. With merges stopped the rewrite cannot start, so an apply that waits for it hangs.
    now = datetime.now(UTC)
    store.write([_event(SIGN_INS, timedelta(days=30), "signin-30d", now)])
    store.execute("SYSTEM STOP MERGES events")
    applying = threading.Thread(
        target=retention.apply, args=(store, retention.default_policy() | {SIGN_INS: 7})
    )
    try:
        applying.start()
        applying.join(timeout=10)
        assert not applying.is_alive(), "retention.apply waited for the stored parts' rewrite"
        (pending,) = store.select(
            "SELECT command FROM system.mutations WHERE table = 'events' AND NOT is_done"
        )
        assert "MATERIALIZE TTL" in pending["command"]
    finally:
        store.execute("SYSTEM START MERGES events")
        applying.join()
    assert _kept(store) == []
