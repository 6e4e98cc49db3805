"""Entity reads and evidence summaries over the fixed data set, checked against Python."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import msgspec

from hubsight.parsing.event import Event, LogSet
from hubsight.query.entities import (
    address_profile,
    role_changes,
    role_name,
    user_profile,
    users_seen,
)
from hubsight.query.lookup import summaries
from hubsight.query.search import event_id
from hubsight.store.embedded import EmbeddedStore

from .dataset import BASE, ROWS

SINCE = BASE - timedelta(days=1)


def test_users_seen_and_search(store: EmbeddedStore) -> None:
    expected = Counter(r.user for r in ROWS if r.user)
    found = {u["name"]: u["events"] for u in users_seen(store, SINCE)}
    assert found == dict(expected)
    assert [u["name"] for u in users_seen(store, SINCE, "ALI")] == ["alice@corp.com"]
    last = max(r.ts for r in ROWS)
    assert users_seen(store, last + timedelta(seconds=1)) == []


def test_user_profile_tops_match_the_rows(store: EmbeddedStore) -> None:
    tops = user_profile(store, "Alice@corp.com", SINCE)["tops"]
    mine = [r for r in ROWS if r.user == "alice@corp.com"]
    assert dict(tops["Addresses"]) == dict(Counter(r.source_ip for r in mine if r.source_ip))
    assert dict(tops["Results"]) == dict(Counter(r.result for r in mine))
    assert tops["MFA methods"] == []


def test_address_profile_users_and_results(store: EmbeddedStore) -> None:
    profile = address_profile(store, "203.0.113.7", SINCE)
    rows = [r for r in ROWS if r.source_ip == "203.0.113.7"]
    assert profile["events"] == len(rows)
    expected = Counter((r.user or "(no user)", r.result) for r in rows)
    assert {(u, res): n for u, res, n in profile["users"]} == dict(expected)
    assert profile["country"] in {r.country for r in rows}
    nowhere = address_profile(store, "192.0.2.99", SINCE)
    assert (nowhere["events"], nowhere["first_seen"], nowhere["users"]) == (0, None, [])


def test_summaries_of_cited_events(store: EmbeddedStore) -> None:
    rows = store.select("SELECT * FROM events WHERE user = 'bob@corp.com' ORDER BY timestamp")
    ids = [event_id(r) for r in rows[:3]]
    gone = event_id({**rows[0], "source_offset": 999_999})
    found = summaries(store, [*ids, gone])
    assert list(found) == ids
    assert {s["user"] for s in found.values()} == {"bob@corp.com"}
    assert [s["result"] for s in found.values()] == [r["result"] for r in rows[:3]]


def test_role_changes_read_the_role_from_modified_properties(store: EmbeddedStore) -> None:
    granted = [{"name": "Role.DisplayName", "old": None, "new": '"Global Administrator"'}]
    store.write(
        [
            Event(
                timestamp=BASE + timedelta(days=30),
                log_set=LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY,
                log_name="AuditLogs",
                raw=msgspec.Raw(b"{}"),
                operation="Add member to role",
                target_user="Mallory@contoso.com",
                result="SUCCESS",
                modified_properties=msgspec.Raw(json.dumps(granted).encode()),
            )
        ]
    )
    (change,) = role_changes(store, "mallory@contoso.com")
    assert (change["role"], change["operation"]) == ("Global Administrator", "Add member to role")
    assert role_changes(store, "alice@corp.com") == []
    assert role_name("not json") is None
    assert role_name('[{"name": "Other", "new": "x"}]') is None
