"""What the stored events say about one user, address or Azure resource (the entity pages).

Each function is one or two ClickHouse reads bounded by time, written so that ClickHouse answers
them from the events table's entity projections (``store.schema.PROJECTIONS``: the rows of one
user, address or resource, sorted by it), so a page stays fast over millions of events. Users
are matched case-insensitively, as Entra treats them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hubsight.query.params import Params, bind
from hubsight.query.search import iso, parse_ch_time
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

_TIME = "DateTime64(3, 'UTC')"
# What a user's profile lists, each with its most frequent values: (label, column).
PROFILE_FIELDS = (
    ("MFA methods", "mfa_method"),
    ("Devices", "device_os"),
    ("Browsers", "browser"),
    ("Applications", "application"),
    ("Countries", "geoip_country_code"),
    ("Addresses", "source_ip"),
    ("Results", "result"),
)
_TOP = 10


def _run(store: EventStore, params: Params, sql: str) -> list[dict[str, Any]]:
    return store.select(sql, bind(params.values))


def users_seen(
    store: EventStore, since: datetime, text: str = "", limit: int = 2000
) -> list[dict[str, Any]]:
    """Every user named by an event since the day of ``since`` (part of the name: ``text``),
    busiest first.

    Whole days (UTC), and every expression as the ``users_daily`` projection writes it: so the
    answer is read from per-user daily sums, not from every event of the period.
    """
    params = Params()
    match = ""
    if text.strip():
        match = (
            f"AND positionCaseInsensitive(lower(user), {params.add('String', text.strip())}) > 0 "
        )
    sql = (
        "SELECT lower(user) AS name, count() AS events, max(timestamp) AS last_seen, "  # noqa: S608
        "uniq(source_ip) AS addresses, countIf(result NOT IN ('SUCCESS', '')) "
        f"AS failures FROM {EVENTS_TABLE} WHERE lower(user) != '' "
        f"AND toDate(timestamp) >= toDate({params.add(_TIME, since)}) {match}"
        f"GROUP BY name ORDER BY events DESC LIMIT {params.add('UInt32', limit)}"
    )
    return [
        {**row, "last_seen": iso(parse_ch_time(row["last_seen"]))}
        for row in _run(store, params, sql)
    ]


def _tops(
    store: EventStore, params: Params, where: str, fields: tuple[tuple[str, str], ...]
) -> dict[str, list[tuple[str, int]]]:
    """The most frequent values of each field among the events ``where`` picks, in one read."""
    pairs = ", ".join(f"('{label}', toString({column}))" for label, column in fields)
    sql = (
        f"SELECT kv.1 AS field, kv.2 AS value, count() AS n FROM {EVENTS_TABLE} "  # noqa: S608
        f"ARRAY JOIN [{pairs}] AS kv WHERE {where} AND kv.2 != '' "
        f"GROUP BY field, value ORDER BY field, n DESC, value LIMIT {_TOP} BY field"
    )
    found: dict[str, list[tuple[str, int]]] = {label: [] for label, _ in fields}
    for row in _run(store, params, sql):
        found[row["field"]].append((row["value"], int(row["n"])))
    return found


def user_profile(store: EventStore, user: str, since: datetime) -> dict[str, Any]:
    """A user's most frequent values since ``since`` and the directory roles given to them."""
    return {"tops": user_tops(store, user, since), "roles": role_changes(store, user)}


def user_tops(store: EventStore, user: str, since: datetime) -> dict[str, list[tuple[str, int]]]:
    """A user's MFA methods, devices, apps, countries, addresses and results since ``since``."""
    params = Params()
    where = (
        f"lower(user) = {params.add('String', user.lower())} "
        f"AND timestamp >= {params.add(_TIME, since)}"
    )
    return _tops(store, params, where, PROFILE_FIELDS)


def role_changes(store: EventStore, user: str, limit: int = 50) -> list[dict[str, Any]]:
    """Directory role grants and removals naming ``user`` as their target (Entra audit logs)."""
    params = Params()
    sql = (
        "SELECT timestamp, operation, user AS actor, result, modified_properties "  # noqa: S608
        f"FROM {EVENTS_TABLE} WHERE log_set = 'Cloud Service Admin Activity' "
        f"AND lower(target_user) = {params.add('String', user.lower())} "
        "AND positionCaseInsensitive(operation, 'role') > 0 "
        f"ORDER BY timestamp DESC LIMIT {params.add('UInt32', limit)}"
    )
    changes = []
    for row in _run(store, params, sql):
        changes.append(
            {
                "at": iso(parse_ch_time(row["timestamp"])),
                "operation": row["operation"],
                "actor": row["actor"],
                "result": row["result"],
                "role": role_name(row["modified_properties"]),
            }
        )
    return changes


def role_name(modified: str | None) -> str | None:
    """The role's display name among an audit record's modified properties."""
    try:
        properties = json.loads(modified or "[]")
    except ValueError:
        return None
    for prop in properties if isinstance(properties, list) else []:
        if isinstance(prop, dict) and prop.get("name") == "Role.DisplayName":
            value = prop.get("new") or prop.get("old")
            return str(value).strip('"') if value else None
    return None


def address_profile(store: EventStore, address: str, since: datetime) -> dict[str, Any]:
    """Where an address is (as GeoIP placed it), and the users and results seen from it since
    the day of ``since`` (whole days: read from the ``addresses_daily`` projection's sums)."""
    params = Params()
    where = (
        f"source_ip = {params.add('String', address)} "
        f"AND toDate(timestamp) >= toDate({params.add(_TIME, since)})"
    )
    geo_sql = (
        "SELECT any(geoip_country_code) AS country, any(geoip_city) AS city, "  # noqa: S608
        "any(geoip_organization) AS organization, any(source_ip_scope) AS scope, "
        "count() AS events, min(timestamp) AS first_seen, max(timestamp) AS last_seen "
        f"FROM {EVENTS_TABLE} WHERE {where}"
    )
    (geo,) = _run(store, params, geo_sql)
    pairs_sql = (
        "SELECT lower(user) AS user, result, count() AS n "  # noqa: S608
        f"FROM {EVENTS_TABLE} WHERE {where} GROUP BY user, result ORDER BY n DESC LIMIT 100"
    )
    seen = int(geo["events"])
    return {
        "events": seen,
        "country": geo["country"] or None,
        "city": geo["city"] or None,
        "organization": geo["organization"] or None,
        "scope": geo["scope"] or None,
        "first_seen": iso(parse_ch_time(geo["first_seen"])) if seen else None,
        "last_seen": iso(parse_ch_time(geo["last_seen"])) if seen else None,
        "users": [
            (r["user"] or "(no user)", r["result"] or "-", int(r["n"]))
            for r in _run(store, params, pairs_sql)
        ],
    }


def resource_activity(store: EventStore, resource_id: str, since: datetime) -> dict[str, Any]:
    """The operations done on an Azure resource (or under it) and who did them."""
    params = Params()
    sql = (
        "SELECT operation, lower(user) AS who, result, count() AS n, "  # noqa: S608
        f"max(timestamp) AS last FROM {EVENTS_TABLE} "
        f"WHERE startsWith(lower(resource_id), {params.add('String', resource_id.lower())}) "
        f"AND timestamp >= {params.add(_TIME, since)} "
        "GROUP BY operation, who, result ORDER BY last DESC LIMIT 200"
    )
    rows = _run(store, params, sql)
    return {
        "operations": [
            {
                "operation": r["operation"],
                "user": r["who"] or None,
                "result": r["result"] or None,
                "count": int(r["n"]),
                "last": iso(parse_ch_time(r["last"])),
            }
            for r in rows
        ]
    }
