"""Entra ID provisioning logs: accounts created, updated, disabled or deleted in connected apps."""

from __future__ import annotations

import msgspec

from hubsight.parsing.azure.activity import normalize_result
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
    set_user,
    severity_of,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet

PROVISIONING_CATEGORY = "ProvisioningLogs"


class _Named(msgspec.Struct):
    id: str | None = None
    displayName: str | None = None
    identityType: str | None = None


class _ErrorInfo(msgspec.Struct):
    errorCode: str | int | None = None
    reason: str | None = None


class _StatusInfo(msgspec.Struct):
    status: str | None = None
    errorInformation: _ErrorInfo | None = None


class _Properties(msgspec.Struct):
    activityDateTime: str | None = None
    provisioningAction: str | None = None
    provisioningStatusInfo: _StatusInfo | None = None
    initiatedBy: _Named | None = None
    sourceIdentity: _Named | None = None
    targetIdentity: _Named | None = None
    servicePrincipal: _Named | None = None
    targetSystem: _Named | None = None
    modifiedProperties: list[ModifiedProperty] | None = None
    jobId: str | None = None
    cycleId: str | None = None


class _Record(msgspec.Struct):
    time: str | None = None
    operationName: str | None = None
    correlationId: str | None = None
    tenantId: str | None = None
    resourceId: str | None = None
    Level: int | str | None = None
    level: int | str | None = None
    properties: _Properties | str | None = None


class ProvisioningParser:
    """Normalizes provisioning records into Cloud Service Activity."""

    categories = (PROVISIONING_CATEGORY,)

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._record = TolerantDecoder(_Record, probe="operationName")
        self._properties = TolerantDecoder(_Properties)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one provisioning record."""
        head = self._record.decode(record)
        props = embedded(head.properties, self._properties) or _Properties()
        event = new_event(
            record,
            ctx,
            log_set=LogSet.CLOUD_SERVICE_ACTIVITY,
            category=PROVISIONING_CATEGORY,
            timestamp=first_time(props.activityDateTime, head.time),
            azure_time=first_time(head.time),
        )
        event.operation = head.operationName or "Provisioning activity"
        event.action = props.provisioningAction
        status = props.provisioningStatusInfo or _StatusInfo()
        event.result = normalize_result(status.status)
        error = status.errorInformation
        if error is not None:
            event.failure_reason = error.reason
        event.severity = severity_of(head.Level if head.Level is not None else head.level)
        event.service = "Microsoft Entra provisioning"
        event.correlation_id = head.correlationId
        event.tenant_id = head.tenantId
        event.resource_id = head.resourceId
        if props.servicePrincipal is not None:
            event.application = props.servicePrincipal.displayName
            event.application_id = props.servicePrincipal.id
        if props.initiatedBy is not None and props.initiatedBy.displayName:
            event.initiated_by_app = props.initiatedBy.displayName
        target = props.targetIdentity
        if target is not None:
            event.target_user = target.displayName.lower() if target.displayName else None
            event.target_resource = target.displayName or target.id
            event.target_type = target.identityType
        source = props.sourceIdentity
        if source is not None and source.displayName and "@" in source.displayName:
            set_user(event, source.displayName, ctx.default_domain)
        event.modified_properties = encode_json(
            [change_of(change) for change in props.modifiedProperties or ()]
        )
        return blanks_to_none(event)
