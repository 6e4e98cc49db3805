"""Entity reads and evidence summaries over the fixed data set, checked against Python."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from hubsight.parsing.event import Event, LogSet
from hubsight.query.entities import (
    address_profile,
    resource_activity,
    role_changes,
    role_name,
    user_profile,
    user_tops,
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
    # Whole days (UTC): the day of the newest event still lists its user, the next one none.
    last = max(r.ts for r in ROWS)
    day = last.replace(hour=0, minute=0, second=0, microsecond=0)
    newest = {r.user for r in ROWS if r.user and r.ts >= day}
    assert {u["name"] for u in users_seen(store, day + timedelta(hours=23))} == newest
    assert users_seen(store, day + timedelta(days=1)) == []


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


VM = "/subscriptions/0000/resourceGroups/RG-App/providers/Microsoft.Compute/virtualMachines/vm1"


def test_resource_activity_covers_the_resource_and_what_is_under_it(
    store: EmbeddedStore,
) -> None:
    # Dated before SINCE and by a user of their own, so the other tests' answers stay the same.
    at = BASE - timedelta(days=10)
    done = [
        (VM, "Start virtual machine", "erin@corp.com", "SUCCESS"),
        (VM, "Start virtual machine", "Erin@corp.com", "SUCCESS"),
        (f"{VM}/extensions/run", "Write extension", "frank@corp.com", "FAILED"),
        (f"{VM}2", "Delete virtual machine", "frank@corp.com", "SUCCESS"),
    ]
    store.write(
        [
            Event(
                timestamp=at + timedelta(minutes=i),
                log_set=LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY,
                log_name="Activity",
                raw=msgspec.Raw(b"{}"),
                resource_id=resource,
                operation=operation,
                user=user,
                result=result,
            )
            for i, (resource, operation, user, result) in enumerate(done)
        ]
    )
    found = resource_activity(store, VM.upper() + "/", at)["operations"]
    assert [(o["operation"], o["user"], o["count"]) for o in found] == [
        ("Write extension", "frank@corp.com", 1)
    ]
    found = resource_activity(store, VM.lower(), at)["operations"]
    assert {(o["operation"], o["user"], o["result"], o["count"]) for o in found} == {
        ("Start virtual machine", "erin@corp.com", "SUCCESS", 2),
        ("Write extension", "frank@corp.com", "FAILED", 1),
        ("Delete virtual machine", "frank@corp.com", "SUCCESS", 1),
    }
    assert resource_activity(store, VM, at + timedelta(minutes=4))["operations"] == []


class _Explained:
    """The store, recording for each read whether ClickHouse can answer it from ``projection``."""

    def __init__(self, store: EmbeddedStore, projection: str) -> None:
        self.store, self.projection = store, projection
        self.verdicts: list[bool] = []

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        explained = self.store.select(f"EXPLAIN projections=1 {sql}", params)
        plan = [row["explain"].strip() for row in explained]
        self.verdicts.append(_narrowed_by(plan, self.projection))
        return self.store.select(sql, params)


def _narrowed_by(plan: list[str], projection: str) -> bool:
    """Whether the plan reads ``projection``, or could, narrowed by its leading key.

    Over a few rows ClickHouse reads the table itself (one mark either way) and only says the
    projection is "usable"; a projection whose leading key the query does not bound is usable
    too, with a condition on the rest searched by "generic exclusion". Over millions of rows
    only a projection bounded by its leading key ("binary search") is worth reading.
    """
    if any(re.fullmatch(rf"└──ReadFrom\w+ \({projection}\)", line) for line in plan):
        return True
    if f"Name: {projection}" not in plan:
        return False
    block = plan[plan.index(f"Name: {projection}") + 1 :][:3]
    return "is usable" in block[0] and block[2] == "Search Algorithm: binary search"


@pytest.mark.parametrize(
    ("projection", "read"),
    [
        ("users_daily", lambda s: users_seen(s, SINCE, "ali")),
        ("by_user", lambda s: user_tops(s, "Alice@corp.com", SINCE)),
        ("addresses_daily", lambda s: address_profile(s, "203.0.113.7", SINCE)),
        ("by_resource", lambda s: resource_activity(s, VM, SINCE)),
    ],
)
def test_entity_reads_are_answered_from_their_projection(
    store: EmbeddedStore, projection: str, read: Any
) -> None:
    # A query edited out of its projection's shape reads every event again: caught here.
    explained = _Explained(store, projection)
    read(explained)
    assert explained.verdicts
    assert all(explained.verdicts)
    # The check itself: a read by another key is not answered from this projection.
    other = "by_resource" if projection != "by_resource" else "by_user"
    explained = _Explained(store, other)
    read(explained)
    assert not any(explained.verdicts)
