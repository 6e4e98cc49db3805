"""Retention per log set: ``GET /api/v1/retention`` (with disk used) and ``PUT`` per log set."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from hubsight.service import Service
from hubsight.store import retention
from hubsight.web.auditing import audit_note, audited
from hubsight.web.auth import require_role

router = APIRouter(prefix="/api/v1")


class RetentionBody(BaseModel):
    """How many days to keep a log set's events."""

    model_config = ConfigDict(extra="forbid")

    days: int


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
