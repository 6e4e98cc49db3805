"""The console's ATT&CK coverage page: tactics x techniques, each rule's data, blind rules."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hubsight.detect.content import content_rules
from hubsight.detect.hunt import replayable_ids
from hubsight.errors import HubsightError
from hubsight.web.auth import require_role
from hubsight.web.hunt_routes import coverage_of
from hubsight.web.rendering import render
from hubsight.web.search_routes import get_store

router = APIRouter()


@router.get("/coverage", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def coverage_page(request: Request) -> HTMLResponse:
    """ATT&CK coverage of the enabled rules against the last 24 h of data."""
    try:
        document = coverage_of(request, get_store(request))
    except HubsightError as exc:
        return render(request, "error.html", {"error": exc.message}, 503)
    # Every Sigma rule can be hunted: the imported (sigma.<id>) and the shipped ones; and the
    # built-in rules that judge each event alone, which have no LEQL form.
    shipped = {cls.meta.id for cls in content_rules()}
    replayable = replayable_ids()
    return render(
        request,
        "coverage.html",
        {"coverage": document, "shipped": shipped | replayable, "replayable": replayable},
    )
