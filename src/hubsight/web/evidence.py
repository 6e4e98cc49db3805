"""What the events an alert cites were, for the pages that list them."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from hubsight.errors import HubsightError
from hubsight.query.lookup import summaries
from hubsight.service import Service


def evidence_summaries(request: Request, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each cited event's time, user, address, operation, result and application, by id."""
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None or not ids:
        return {}
    try:
        return summaries(service.store, ids)
    except HubsightError:
        # The page still shows the positions when the store cannot answer.
        return {}
