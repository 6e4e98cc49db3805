"""What the console's pages read from the app, and the time filter their lists share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import Request

from hubsight.detect.db import DetectDB
from hubsight.service import Service

SINCE = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def detect_db(request: Request) -> DetectDB | None:
    """The detection database; None when detections do not run in this process."""
    db: DetectDB | None = getattr(request.app.state, "detect_db", None)
    return db


def service_of(request: Request) -> Service:
    """The service the console shows."""
    service: Service = request.app.state.service
    return service


def since_filter(since: str) -> tuple[str, datetime | None]:
    """A list's ``since`` choice as the page shows it back (blank when not one of ``SINCE``),
    and the time its list starts at (None: from the beginning)."""
    if since not in SINCE:
        return "", None
    return since, datetime.now(UTC) - SINCE[since]
