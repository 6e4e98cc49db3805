"""Notables on the alerts about the same user, by event time.

An alert about a user lists (in ``context["notables"]``) the user's notables, such as a first
sign-in from a country, whose event time falls between a week before the alert's first event
and its last one. Late events move, add and withdraw both kinds, so the lists are worked out
again whenever either changes: they end the same whatever order the events arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from hubsight.detect.alerts import Alert

LOOKBACK = timedelta(days=7)


def relink(alerts: Iterable[Alert], notables: Mapping[str, datetime]) -> list[Alert]:
    """Set each alert's notables from ``notables`` (id -> event time, one user's); the changed."""
    changed: list[Alert] = []
    for alert in alerts:
        if notables:
            floor, ceiling = alert.first_event_time - LOOKBACK, alert.last_event_time
            ids = sorted(i for i, at in notables.items() if floor <= at <= ceiling)
        else:
            # Most users have none: nothing to choose among (most alerts' users, every batch).
            ids = []
        if ids == alert.context.get("notables", []):
            continue
        if ids:
            alert.context["notables"] = ids
        else:
            alert.context.pop("notables", None)
        changed.append(alert)
    return changed
