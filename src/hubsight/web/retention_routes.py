"""Retention per log set: ``GET /api/v1/retention`` (with disk used) and ``PUT`` per log set;
and of closed alerts and investigations: ``GET``/``PUT /api/v1/retention/alerts``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, JsonValue

from hubsight.detect import expiry
from hubsight.errors import ConfigError
from hubsight.service import Service
from hubsight.store import retention
from hubsight.web.auditing import audit_note, audited
from hubsight.web.auth import require_role
from hubsight.web.page_state import detect_db

router = APIRouter(prefix="/api/v1")


class RetentionBody(BaseModel):
    """How many days to keep a log set's events."""

    model_config = ConfigDict(extra="forbid")

    days: int


class CaseRetentionBody(BaseModel):
    """Days closed alerts and investigations are kept after they last changed; null or "off":
    for ever."""

    model_config = ConfigDict(extra="forbid")

    # Checked by ``checked_case_days``, so that ``true`` or 2.5 is refused with the fix (not
    # read as 1 or 2, nor answered with a validator's type names).
    days: JsonValue


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def retention_rows(service: Service) -> list[dict[str, Any]]:
    """Each log set: days kept, events stored, estimated bytes on disk."""
    return retention.usage(service.store, service.catalog.retention())


@router.get("/retention", dependencies=[require_role("analyst")])
def list_retention(request: Request) -> list[dict[str, Any]]:
    """Days kept, events and disk used per log set."""
    return retention_rows(_service(request))


def case_rows(request: Request) -> dict[str, Any]:
    """The policy of closed alerts and investigations, with how many are stored and their disk."""
    db = detect_db(request)
    if db is None:
        raise ConfigError(
            "detections are not set up in this API", hint="set app.state.detect_db at start-up"
        )
    return expiry.usage(db, _service(request).catalog.case_retention())


# Before ``/retention/{log_set}``: ``alerts`` is not a log set.
@router.get(f"/retention/{retention.CASES}", dependencies=[require_role("analyst")])
def list_case_retention(request: Request) -> dict[str, Any]:
    """Days closed alerts and investigations are kept (null: for ever), with counts and disk."""
    return case_rows(request)


@router.put(
    f"/retention/{retention.CASES}",
    dependencies=[require_role("admin"), audited("retention.update")],
)
def set_case_retention(request: Request, body: CaseRetentionBody) -> dict[str, Any]:
    """Delete closed alerts and investigations this many days after they last changed (null or
    "off": keep them for ever); the running service applies it within a minute."""
    catalog = _service(request).catalog
    days = retention.checked_case_days(body.days)
    before = catalog.case_retention()
    catalog.set_case_retention(days)
    note = audit_note(request)
    # Named as `hubsight retention set alerts` names it (the path has no parameter to name it).
    note.target = retention.CASES
    note.changes = {"days": [before, days]}
    return {"name": retention.CASES, "days": days}


@router.put(
    "/retention/{log_set}", dependencies=[require_role("admin"), audited("retention.update")]
)
def set_retention(request: Request, log_set: str, body: RetentionBody) -> dict[str, Any]:
    """Keep a log set's events this many days; the store applies it within a second."""
    service = _service(request)
    before = service.catalog.retention().get(log_set)
    service.catalog.set_retention(log_set, body.days)
    audit_note(request).changes = {"days": [before, body.days]}
    return {"log_set": log_set, "days": body.days}
