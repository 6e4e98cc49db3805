"""Links from what a page shows to Log Search and to entity pages ("pivots").

A Log Search link carries the query, the log sets and the time window as URL parameters, which
the Log Search page fills in and runs. Entity links lead to the user, address and resource pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from hubsight.query.parser import leql_string

# Around an alert: enough before to see the lead-up, enough after to see what followed.
ALERT_MARGIN = timedelta(hours=1)
# Around one event: its neighbours.
EVENT_MARGIN = timedelta(minutes=5)


def search_link(
    query: str = "",
    *,
    log_sets: Iterable[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    last: str | None = None,
) -> str:
    """The Log Search page with this query, log sets and time window, run on opening."""
    params: list[tuple[str, str]] = [("q", query)]
    params += [("log_set", s) for s in sorted(set(log_sets))]
    if start is not None and end is not None:
        params += [("from", start.isoformat()), ("to", end.isoformat())]
    elif last:
        params.append(("last", last))
    params.append(("run", "1"))
    return "/search?" + urlencode(params)


def _term(key: str, value: str) -> str:
    return f"{key}={leql_string(value)}"


def who_and_where(subjects: Iterable[tuple[str, str]]) -> str:
    """A LEQL filter matching any of ``(key, value)``, e.g. the user and the address."""
    terms = [_term(k, v) for k, v in dict.fromkeys(subjects)]
    return f"where({' OR '.join(terms)})" if terms else ""


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def alert_search(alert: dict[str, Any]) -> str:
    """Log Search over the alert's log sets, about its user or address, around its events."""
    subjects = [("user", alert["user"])] if alert.get("user") else []
    subjects += [("source_ip", alert["source_ip"])] if alert.get("source_ip") else []
    return search_link(
        who_and_where(subjects),
        log_sets=[e["log_set"] for e in alert.get("evidence", []) if e.get("log_set")],
        start=_parse(alert["first_event_time"]) - ALERT_MARGIN,
        end=_parse(alert["last_event_time"]) + ALERT_MARGIN,
    )


def evidence_search(ref: dict[str, Any]) -> str:
    """Log Search over the event's log set, minutes either side of it."""
    at = _parse(ref["timestamp"])
    return search_link(
        log_sets=[ref["log_set"]] if ref.get("log_set") else [],
        start=at - EVENT_MARGIN,
        end=at + EVENT_MARGIN,
    )


_SUBJECT_KEYS = {"user": "user", "ip": "source_ip", "resource": "resource_id"}


def investigation_search(inv: dict[str, Any]) -> str:
    """Log Search about every subject of the investigation, over its alerts' log sets and time."""
    subjects = []
    for subject in inv["subjects"]:
        kind, value = subject.split(":", 1)
        subjects.append((_SUBJECT_KEYS[kind], value))
    log_sets = [
        e["evidence"]["log_set"]
        for e in inv.get("timeline", [])
        if e.get("evidence") and e["evidence"].get("log_set")
    ]
    return search_link(
        who_and_where(subjects),
        log_sets=log_sets,
        start=_parse(inv["first_event_time"]) - ALERT_MARGIN,
        end=_parse(inv["last_event_time"]) + ALERT_MARGIN,
    )


def entity_search(key: str, value: str, last: str = "7d") -> str:
    """Log Search for one user, address or resource over the last days."""
    return search_link(who_and_where([(key, value)]), last=last)


def rule_search(log_sets: Iterable[str], last: str = "24h") -> str:
    """Log Search over the log sets a rule reads."""
    return search_link(log_sets=log_sets, last=last)


def user_url(user: str) -> str:
    """The user's page."""
    return "/users/" + quote(user, safe="@")


def address_url(address: str) -> str:
    """The address's page."""
    return "/addresses/" + quote(address, safe=":")


def resource_url(resource_id: str) -> str:
    """The Azure resource's page (its id holds slashes, so it goes in the query)."""
    return "/resources?" + urlencode({"id": resource_id})


def application_url(application: str) -> str:
    """The application's sign-ins in Log Search (applications have no page of their own)."""
    return entity_search("application", application)
