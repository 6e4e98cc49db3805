"""The console's Investigations pages: the list with filters, and one investigation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hubsight.detect.alerts import DISPOSITIONS, STATUSES
from hubsight.detect.grouping import PRIORITIES
from hubsight.detect.investigations import InvestigationFilter, InvestigationStore
from hubsight.errors import HubsightError
from hubsight.web.auth import require_role
from hubsight.web.evidence import evidence_summaries
from hubsight.web.investigation_routes import investigation_detail
from hubsight.web.page_state import detect_db, since_filter
from hubsight.web.pivots import investigation_search
from hubsight.web.rendering import render

router = APIRouter(include_in_schema=False)


def account_names(request: Request) -> list[str]:
    """The console's accounts, whom investigations and alerts can be assigned to."""
    auth = request.app.state.auth
    return [a.name for a in auth.users.accounts()] if auth is not None else []


@router.get("/investigations", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def investigations_page(
    request: Request,
    status: str = "",
    assignee: str = "",
    priority: str = "",
    q: str = "",
    since: str = "",
) -> HTMLResponse:
    """Investigations with filters (status, assignee, priority, text, time)."""
    db = detect_db(request)
    since, start = since_filter(since)
    filters = {"status": status, "assignee": assignee, "priority": priority, "q": q, "since": since}
    found: list[dict[str, Any]] = []
    error = None
    if db is None:
        error = "detections are not running in this process"
    else:
        flt = InvestigationFilter(
            status=status if status in STATUSES else None,
            assignee=assignee or None,
            priority=priority if priority in PRIORITIES else None,
            text=q.strip() or None,
            since=start,
            limit=500,
        )
        found = [i.summary() for i in InvestigationStore(db).find(flt)]
    return render(
        request,
        "investigations.html",
        {
            "investigations": found,
            "filters": filters,
            "filtered": any(filters.values()),
            "statuses": STATUSES,
            "priorities": PRIORITIES,
            "accounts": account_names(request),
            "error": error,
        },
    )


@router.get(
    "/investigations/{investigation_id}",
    response_class=HTMLResponse,
    dependencies=[require_role("analyst")],
)
def investigation_page(request: Request, investigation_id: str) -> HTMLResponse:
    """One investigation: triage, its alerts (split, bulk triage), timeline, merge, history."""
    db = detect_db(request)
    if db is None:
        return render(request, "error.html", {"error": "detections are not running"}, 503)
    store = InvestigationStore(db)
    try:
        found = investigation_detail(store, store.get(investigation_id))
    except HubsightError as exc:
        context = {"error": exc.message, "back": ("/investigations", "all investigations")}
        return render(request, "error.html", context, 404)
    ids = [e["evidence"]["event_id"] for e in found["timeline"] if e["evidence"]]
    return render(
        request,
        "investigation.html",
        {
            "inv": found,
            "events": evidence_summaries(request, ids),
            "search": investigation_search(found),
            "statuses": STATUSES,
            "dispositions": DISPOSITIONS,
            "priorities": PRIORITIES,
            "accounts": account_names(request),
        },
    )
