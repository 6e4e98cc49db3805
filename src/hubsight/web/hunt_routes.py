"""Rules against stored data: ``POST /api/v1/rules/hunt`` (``rules hunt``, the console's Hunt
button) and ``GET /api/v1/rules/coverage`` (``rules coverage``, the console's Coverage page)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hubsight.detect.attack import coverage, delivered, matrix, navigator_layer
from hubsight.detect.db import DetectDB
from hubsight.detect.hunt import hunt, hunt_leql, hunt_rules
from hubsight.detect.runtime import load_ruleset
from hubsight.errors import ConfigError, HubsightError, StoreError
from hubsight.query.timerange import resolve_window
from hubsight.store.base import EventStore
from hubsight.web.auditing import audit_note, audited
from hubsight.web.auth import require_role
from hubsight.web.responses import error_response
from hubsight.web.search_routes import Store

router = APIRouter(prefix="/api/v1")


class HuntBody(BaseModel):
    """What to hunt (an imported rule's id, or a Sigma file's text) and over which window."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rule: str | None = None
    sigma: str | None = Field(default=None, max_length=1_000_000)
    last: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None


@router.post(
    "/rules/hunt",
    response_model=None,
    dependencies=[require_role("analyst"), audited("hunt", tokens_only=True)],
)
def hunt_route(request: Request, body: HuntBody, store: Store) -> dict[str, Any] | JSONResponse:
    """Run a rule over the stored events of a window: the alerts it would have raised."""
    audit_note(request).target = body.rule or "(sigma text)"
    data_dir: Path = request.app.state.data_dir
    try:
        if (body.rule is None) == (body.sigma is None):
            raise ConfigError("give either rule (an id) or sigma (a rule's text)")
        window = resolve_window(
            now=datetime.now(UTC), last=body.last or (None if body.from_ else "90d"),
            start=body.from_, end=body.to,
        )  # fmt: skip
        if body.sigma is not None:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "hunted.yml"
                path.write_text(body.sigma, "utf-8")
                rules = hunt_rules(data_dir, str(path), shown="the Sigma text")
        else:
            rules = hunt_rules(data_dir, body.rule or "", files=False)
        return hunt(store, rules, window.start, window.end).to_json()
    except HubsightError as exc:
        return error_response(exc)


def coverage_of(request: Request, store: EventStore, *, navigator: bool = False) -> dict[str, Any]:
    """ATT&CK coverage of the enabled rules against the last 24 h of stored data."""
    db: DetectDB | None = getattr(request.app.state, "detect_db", None)
    if db is None:
        raise StoreError("detections are not running", hint="start hubsight run")
    data_dir: Path = request.app.state.data_dir
    covered = coverage(load_ruleset(data_dir, db).rules, delivered(store, datetime.now(UTC)))
    return navigator_layer(covered) if navigator else matrix(covered)


@router.get("/rules/coverage", response_model=None, dependencies=[require_role("analyst")])
def coverage_route(
    request: Request, store: Store, format: Literal["json", "navigator"] = "json"
) -> dict[str, Any] | JSONResponse:
    """Tactics x techniques of the enabled rules; ``format=navigator`` for a Navigator layer."""
    try:
        return coverage_of(request, store, navigator=format == "navigator")
    except HubsightError as exc:
        return error_response(exc)


@router.get("/rules/{rule_id}/leql", response_model=None, dependencies=[require_role("analyst")])
def leql_route(request: Request, rule_id: str) -> dict[str, Any] | JSONResponse:
    """An imported single-event Sigma rule as a LEQL query, to open in Log Search."""
    try:
        return {
            "rule": rule_id,
            "leql": hunt_leql(request.app.state.data_dir, rule_id, files=False),
        }
    except HubsightError as exc:
        return error_response(exc)
