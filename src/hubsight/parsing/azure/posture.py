"""Defender for Cloud continuous export of posture: assessments, sub-assessments, secure scores
and regulatory compliance.

Continuous export sends the ARM objects themselves, without a category: ``type`` (or ``Type``)
names what the object is (``Microsoft.Security/assessments``, ``.../subAssessments``,
``Microsoft.Security/secureScores``, ``.../regulatoryComplianceAssessments``), ``id`` where it
lives and ``properties`` its state. Exported alerts (``Microsoft.Security/Alerts``) are
``DefenderParser``'s.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from hubsight.parsing.azure.activity import guid, lookup, name_of, subscription_of
from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    TolerantDecoder,
    blanks_to_none,
    first_time,
    new_event,
    nonempty,
    severity_of,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet

_TYPE = re.compile(rb'"[Tt]ype"\s*:\s*"microsoft\.security/', re.IGNORECASE)
# The part of an object's id that is Defender's own, after the resource it is about.
_SECURITY_SUFFIX = re.compile(r"/providers/Microsoft\.Security/.*$", re.IGNORECASE)


class _Export(msgspec.Struct):
    type: str | None = None
    id: str | None = None
    name: str | None = None
    tenantId: str | None = None
    properties: dict[str, Any] | None = None


def is_posture_export(record: bytes) -> bool:
    """Whether a record without a category is a Defender continuous-export object."""
    return _TYPE.search(record, 0, 4096) is not None


class DefenderPostureParser:
    """Normalizes Defender for Cloud posture objects into Cloud Service Activity."""

    # Found by shape: continuous export sends no category.
    categories: tuple[str, ...] = ()

    def __init__(self, deps: ParserDeps) -> None:
        self._decoder = TolerantDecoder(_Export, probe="type")

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one exported posture object."""
        export = self._decoder.decode(record)
        props = export.properties or {}
        status = lookup(props, "status")
        status = status if isinstance(status, dict) else {}
        metadata = lookup(props, "metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        event = new_event(
            record,
            ctx,
            log_set=LogSet.CLOUD_SERVICE_ACTIVITY,
            category=export.type,
            timestamp=first_time(
                lookup(props, "timeGenerated"),
                lookup(status, "statusChangeDate"),
                lookup(props, "statusChangeDate"),
            ),
            azure_time=None,
        )
        event.service = "Microsoft Defender for Cloud"
        event.vendor = "Microsoft"
        event.product = "Microsoft Defender for Cloud"
        event.operation = (
            nonempty(lookup(props, "displayName"))
            or nonempty(lookup(props, "description"))
            or _kind(export.type)
        )
        event.status = nonempty(lookup(status, "code")) or nonempty(lookup(props, "state"))
        event.severity = severity_of(
            lookup(metadata, "severity") or lookup(status, "severity") or lookup(props, "severity")
        )
        event.description = nonempty(lookup(status, "description")) or nonempty(
            lookup(props, "description")
        )
        event.remediation = nonempty(lookup(props, "remediation"))
        event.alert_id = export.name
        resource = _resource_of(export.id, lookup(props, "resourceDetails"))
        event.resource_id = resource
        event.target_resource = name_of(resource)
        event.subscription_id = guid(subscription_of(resource))
        event.tenant_id = guid(export.tenantId)
        score = lookup(props, "score")
        if isinstance(score, dict) and event.status is None:
            event.status = _score_text(score)
        return blanks_to_none(event)


def _kind(type_: str | None) -> str | None:
    return type_.rsplit("/", 1)[-1] if type_ else None


def _resource_of(object_id: str | None, details: object) -> str | None:
    """The Azure resource an object is about: its resourceDetails' id, else its own id's start."""
    if isinstance(details, dict):
        found = nonempty(lookup(details, "Id", "ResourceId", "AzureResourceId"))
        if found:
            return found
    if not object_id:
        return None
    return _SECURITY_SUFFIX.sub("", object_id) or object_id


def _score_text(score: dict[str, Any]) -> str | None:
    current, maximum = lookup(score, "current"), lookup(score, "max")
    if isinstance(current, int | float) and isinstance(maximum, int | float):
        return f"{current:g} of {maximum:g}"
    return None
