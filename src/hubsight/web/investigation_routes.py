"""REST routes of investigations: list, detail with timeline, triage, merge, split; bulk triage.

Analysts and admins may use all of them. Behind sign-in, the history names the signed-in account
and an assignee must be one of the console's accounts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hubsight.detect.alerts import AlertStore, Status
from hubsight.detect.grouping import Priority
from hubsight.detect.investigations import (
    Investigation,
    InvestigationFilter,
    InvestigationStore,
    TimelineEntry,
    Triage,
    alert_moves,
)
from hubsight.errors import HubsightError
from hubsight.store.audit import changes
from hubsight.web.auditing import audit_note, audited
from hubsight.web.auth import require_role
from hubsight.web.detect_routes import (
    Db,
    ListLimit,
    TriageChange,
    actor_of,
    check_assignee,
    evidence_link,
    note_triage,
)
from hubsight.web.responses import error_response

router = APIRouter(prefix="/api/v1")


def timeline_doc(entry: TimelineEntry) -> dict[str, Any]:
    """A timeline entry as JSON: what happened, when, and which alert it belongs to."""
    return {
        "at": entry.at.isoformat(),
        "kind": entry.kind,
        "alert_id": entry.alert.id,
        "title": entry.alert.title,
        "severity": str(entry.alert.severity),
        "rule_id": entry.alert.rule_id,
        "evidence": evidence_link(entry.ref) if entry.ref is not None else None,
        "cited_by": entry.cited_by,
    }


def investigation_detail(store: InvestigationStore, found: Investigation) -> dict[str, Any]:
    """An investigation with its alerts, timeline and history."""
    return {
        **found.summary(),
        "alerts": [a.summary() for a in store.member_alerts(found.id)],
        "timeline": [timeline_doc(e) for e in store.timeline(found.id)],
        "history": store.history(found.id),
    }


@router.get("/investigations", dependencies=[require_role("analyst")])
def list_investigations(
    db: Db,
    status: Status | None = None,
    assignee: str | None = None,
    priority: Priority | None = None,
    q: str | None = None,
    since: datetime | None = None,
    limit: ListLimit = 100,
) -> list[dict[str, Any]]:
    """Investigations, most recent event first; ``q`` matches part of a title or subject."""
    flt = InvestigationFilter(
        status=status,
        assignee=assignee or None,
        priority=priority,
        text=q or None,
        since=since,
        limit=limit,
    )
    return [i.summary() for i in InvestigationStore(db).find(flt)]


@router.get(
    "/investigations/{investigation_id}",
    response_model=None,
    dependencies=[require_role("analyst")],
)
def get_investigation(investigation_id: str, db: Db) -> dict[str, Any] | JSONResponse:
    """One investigation: its alerts, its timeline of alerts, notables and evidence, history."""
    store = InvestigationStore(db)
    try:
        return investigation_detail(store, store.get(investigation_id))
    except HubsightError as exc:
        return error_response(exc)


class InvestigationUpdate(TriageChange):
    """Triage changes of an investigation; an empty assignee unassigns."""

    priority: Priority | None = None
    title: str | None = Field(default=None, max_length=300)
    comment: str | None = Field(default=None, max_length=10_000)


@router.patch(
    "/investigations/{investigation_id}",
    response_model=None,
    dependencies=[require_role("analyst"), audited("investigation.triage")],
)
def update_investigation(
    request: Request, investigation_id: str, body: InvestigationUpdate, db: Db
) -> dict[str, Any] | JSONResponse:
    """Change status, disposition, assignee, priority or title, or comment.

    Closing an investigation closes its open alerts with the same disposition; reopening it
    reopens those alerts (not ones closed by hand, nor ones triaged since).
    """
    store = InvestigationStore(db)
    triage = Triage(**body.model_dump(exclude={"actor"}))
    try:
        check_assignee(request, body.assignee)
        before = store.get(investigation_id).summary()
        members = store.member_alerts(investigation_id)
        found = store.update(investigation_id, triage, actor=actor_of(request, body.actor))
        after = found.summary()
    except HubsightError as exc:
        return error_response(exc)
    note = audit_note(request)
    note.changes = changes(
        {k: before.get(k) for k in _TRIAGED}, {k: after.get(k) for k in _TRIAGED}
    )
    note.details |= alert_moves(members, store.member_alerts(investigation_id))
    if body.comment:
        note.details["comment"] = body.comment
    return investigation_detail(store, found)


_TRIAGED = ("status", "disposition", "assignee", "priority", "title")


class Merge(BaseModel):
    """Investigations to merge into the one named in the path."""

    model_config = ConfigDict(extra="forbid")

    investigations: list[str] = Field(min_length=1, max_length=100)
    actor: str = "api"


@router.post(
    "/investigations/{investigation_id}/merge",
    response_model=None,
    dependencies=[require_role("analyst"), audited("investigation.merge")],
)
def merge_investigations(
    request: Request, investigation_id: str, body: Merge, db: Db
) -> dict[str, Any] | JSONResponse:
    """Move the alerts of the named investigations here; those are closed as merged."""
    store = InvestigationStore(db)
    try:
        found = store.merge(
            investigation_id, body.investigations, actor=actor_of(request, body.actor)
        )
        audit_note(request).details["merged"] = body.investigations
        return investigation_detail(store, found)
    except HubsightError as exc:
        return error_response(exc)


class Split(BaseModel):
    """Alerts to move out of an investigation into a new one."""

    model_config = ConfigDict(extra="forbid")

    alert_ids: list[str] = Field(min_length=1, max_length=1000)
    actor: str = "api"


@router.post(
    "/investigations/{investigation_id}/split",
    status_code=201,
    response_model=None,
    dependencies=[require_role("analyst"), audited("investigation.split")],
)
def split_investigation(
    request: Request, investigation_id: str, body: Split, db: Db
) -> dict[str, Any] | JSONResponse:
    """Move some alerts into a new investigation; the answer is the new one."""
    store = InvestigationStore(db)
    try:
        found = store.split(investigation_id, body.alert_ids, actor=actor_of(request, body.actor))
        audit_note(request).details |= {"alerts": body.alert_ids, "into": found.id}
        return investigation_detail(store, found)
    except HubsightError as exc:
        return error_response(exc)


class BulkTriage(TriageChange):
    """The same triage change for many alerts."""

    alert_ids: list[str] = Field(min_length=1, max_length=1000)
    comment: str | None = Field(default=None, max_length=10_000)


@router.post(
    "/alerts/triage",
    response_model=None,
    dependencies=[require_role("analyst"), audited("alert.triage")],
)
def triage_alerts(
    request: Request, body: BulkTriage, db: Db
) -> list[dict[str, Any]] | JSONResponse:
    """Apply one change to every listed alert; nothing changes when an id is unknown."""
    try:
        check_assignee(request, body.assignee)
        alerts = AlertStore(db)
        before = [alerts.get(alert_id) for alert_id in dict.fromkeys(body.alert_ids)]
        changed = InvestigationStore(db).triage_alerts(
            body.alert_ids,
            actor=actor_of(request, body.actor),
            status=body.status,
            disposition=body.disposition,
            assignee=body.assignee,
            comment=body.comment,
        )
    except HubsightError as exc:
        return error_response(exc)
    audit_note(request).target = before[0].id if len(before) == 1 else f"{len(before)} alerts"
    note_triage(request, before, changed, body.comment)
    return [a.summary() for a in changed]
