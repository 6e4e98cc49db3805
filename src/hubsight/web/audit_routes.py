"""The audit trail for admins: ``GET /api/v1/audit`` and the console's Audit trail page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from hubsight.query.timerange import parse_since
from hubsight.store.audit import AuditFilter
from hubsight.web.auditing import audit_log
from hubsight.web.auth import require_role
from hubsight.web.rendering import render

_PAGE_SIZE = 100
router = APIRouter()


def audit_filter(
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = _PAGE_SIZE,
) -> AuditFilter:
    """The filter of the API's and the page's query parameters."""
    return AuditFilter(
        actor=actor or None,
        action=action or None,
        since=parse_since(since, datetime.now(UTC), "since"),
        until=parse_since(until, datetime.now(UTC), "until"),
        before=before,
        limit=limit,
    )


Filter = Annotated[AuditFilter, Depends(audit_filter)]


@router.get("/api/v1/audit", dependencies=[require_role("admin")])
def list_audit(request: Request, flt: Filter) -> dict[str, Any]:
    """Audit entries, newest first: actor, action (or its family, e.g. ``source``), since/until
    (ISO 8601 or ``24h``); ``next_before`` pages on to older ones."""
    entries = audit_log(request).entries(flt)
    more = len(entries) == flt.limit
    return {
        "entries": [e.as_dict() for e in entries],
        "next_before": entries[-1].seq if entries and more else None,
    }


@router.get(
    "/settings/audit",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[require_role("admin")],
)
def audit_page(
    request: Request,
    flt: Filter,
    actor: str = "",
    action: str = "",
    since: str = "",
) -> HTMLResponse:
    """The audit trail with filters (admins only)."""
    entries = audit_log(request).entries(flt)
    more = len(entries) == flt.limit
    return render(
        request,
        "audit.html",
        {
            "entries": [e.as_dict() for e in entries],
            "filters": {"actor": actor, "action": action, "since": since},
            "next_before": entries[-1].seq if entries and more else None,
        },
    )
