"""Entra ID audit logs: role, user, group, application, policy and domain changes.

Event Hubs wrap the audit entry in ``properties`` (category ``AuditLogs``); Graph and portal exports
send the entry itself, whose ``category`` is the audit category (``UserManagement``, ``Policy``,
...). Old and new values of modified properties arrive as JSON inside strings and are decoded.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    ModifiedProperty,
    TolerantDecoder,
    blanks_to_none,
    change_of,
    embedded,
    encode_json,
    first_time,
    new_event,
    nonempty,
    set_source,
    set_user,
    severity_of,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet

AUDIT_CATEGORY = "AuditLogs"
_RESULTS = {"success": "SUCCESS", "failure": "FAILED", "timeout": "FAILED"}


class _UserInitiator(msgspec.Struct):
    userPrincipalName: str | None = None
    displayName: str | None = None
    ipAddress: str | None = None


class _AppInitiator(msgspec.Struct):
    appId: str | None = None
    displayName: str | None = None
    servicePrincipalName: str | None = None


class _InitiatedBy(msgspec.Struct):
    user: _UserInitiator | None = None
    app: _AppInitiator | None = None


class _Target(msgspec.Struct):
    id: str | None = None
    displayName: str | None = None
    type: str | None = None
    userPrincipalName: str | None = None
    modifiedProperties: list[ModifiedProperty] | None = None


class _Detail(msgspec.Struct):
    key: str | None = None
    value: Any = None


class _Entry(msgspec.Struct):
    activityDateTime: str | None = None
    activityDisplayName: str | None = None
    category: str | None = None
    correlationId: str | None = None
    result: str | None = None
    resultReason: str | None = None
    loggedByService: str | None = None
    operationType: str | None = None
    userAgent: str | None = None
    initiatedBy: _InitiatedBy | None = None
    targetResources: list[_Target] | None = None
    additionalDetails: list[_Detail] | None = None


class _Record(msgspec.Struct):
    time: str | None = None
    category: str | None = None
    operationName: str | None = None
    resultSignature: str | None = None
    callerIpAddress: str | None = None
    correlationId: str | None = None
    tenantId: str | None = None
    resourceId: str | None = None
    Level: int | str | None = None
    level: int | str | None = None
    properties: _Entry | str | None = None
    # Present at the top level only in the Graph / portal shape.
    activityDisplayName: str | None = None


def is_graph_audit(record: bytes) -> bool:
    """Whether a record is a bare Graph-shaped audit entry (no Azure Monitor envelope)."""
    return b'"activityDisplayName"' in record and b'"operationName"' not in record


class AuditParser:
    """Normalizes Entra ID audit entries into Cloud Service Admin Activity."""

    categories = (AUDIT_CATEGORY,)

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._record = TolerantDecoder(_Record, probe="operationName")
        self._entry = TolerantDecoder(_Entry)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one audit record of either shape."""
        head = self._record.decode(record)
        if head.activityDisplayName is not None:
            entry = self._entry.decode(record)
            head = _Record(correlationId=entry.correlationId)
        else:
            entry = embedded(head.properties, self._entry) or _Entry()
        event = new_event(
            record,
            ctx,
            log_set=LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY,
            category=AUDIT_CATEGORY,
            timestamp=first_time(entry.activityDateTime, head.time),
            azure_time=first_time(head.time),
        )
        event.operation = entry.activityDisplayName or head.operationName
        event.action = entry.operationType
        result = entry.result or head.resultSignature
        event.result = _RESULTS.get(result.lower(), result.upper()) if result else None
        event.failure_reason = entry.resultReason or None
        event.service = entry.loggedByService or "Core Directory"
        event.severity = severity_of(head.Level if head.Level is not None else head.level)
        event.correlation_id = head.correlationId or entry.correlationId
        event.tenant_id = head.tenantId or _detail(entry, "tid")
        event.resource_id = head.resourceId
        event.user_agent = entry.userAgent or _detail(entry, "User-Agent")
        initiated = entry.initiatedBy or _InitiatedBy()
        address = head.callerIpAddress
        if initiated.user is not None:
            set_user(event, initiated.user.userPrincipalName, ctx.default_domain)
            address = initiated.user.ipAddress or address
            event.actor_type = "user" if event.user else None
        if initiated.app is not None:
            app = initiated.app
            event.initiated_by_app = app.displayName or app.servicePrincipalName or app.appId
            if event.user is None:
                event.actor_type = "service_principal"
        set_source(event, address, self._geoip)
        _set_targets(event, entry.targetResources or [])
        return blanks_to_none(event)


def _set_targets(event: Event, targets: list[_Target]) -> None:
    changes: list[dict[str, Any]] = []
    for target in targets:
        if event.target_user is None and target.userPrincipalName:
            event.target_user = target.userPrincipalName.lower()
        if event.target_resource is None:
            event.target_resource = target.displayName or target.userPrincipalName or target.id
            event.target_type = target.type
        for change in target.modifiedProperties or ():
            target_name = target.displayName or target.userPrincipalName or target.id
            changes.append({"target": target_name, **change_of(change)})
    event.modified_properties = encode_json(changes)


def _detail(entry: _Entry, key: str) -> str | None:
    for detail in entry.additionalDetails or ():
        if detail.key == key:
            return nonempty(detail.value)
    return None
