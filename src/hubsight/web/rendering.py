"""Jinja2 rendering of the console's pages with the caller's account and CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from hubsight.query.parser import leql_string
from hubsight.web import pivots
from hubsight.web.worldmap import country_name

# Pages load scripts and styles from /static only, so injected markup cannot run script, and no
# other site may frame the console (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
_templates.env.filters["country"] = country_name
# Values a page writes into a LEQL query (chart queries) go through the one quoting function.
_templates.env.filters["leql"] = leql_string
_templates.env.globals.update(
    user_url=pivots.user_url,
    address_url=pivots.address_url,
    resource_url=pivots.resource_url,
    application_url=pivots.application_url,
    evidence_search=pivots.evidence_search,
    entity_search=pivots.entity_search,
    rule_search=pivots.rule_search,
)


def render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """A page with the caller's account and CSRF token."""
    state = request.state
    base = {
        "account": getattr(state, "account", None),
        "csrf": getattr(state, "csrf", ""),
        "auth_on": request.app.state.auth is not None,
        "path": request.url.path,
    }
    response = _templates.TemplateResponse(request, template, base | context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response
