"""Azure Activity Log: administrative and policy operations, and service / resource health records.

Event Hubs deliver the resource-log shape (``time``, ``callerIpAddress``, ``identity`` object,
plain-string ``category``/``operationName``/``resultType``); the portal and REST API deliver the
older shape (``eventTimestamp``, ``caller``, ``httpRequest``, ``{value, localizedValue}`` objects).
Both are read by one schema. Older records spell the administrative category ``Action``,
``Write`` or ``Delete``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    LocalizedText,
    TolerantDecoder,
    blanks_to_none,
    encode_json,
    first_time,
    json_value,
    new_event,
    nonempty,
    set_source,
    set_user,
    severity_of,
    text_of,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.geoip import GeoIP

ADMIN_CATEGORIES = ("Administrative", "Policy", "Action", "Write", "Delete")
SERVICE_CATEGORIES = ("ServiceHealth", "ResourceHealth", "Alert", "Autoscale", "Recommendation")

_RESULTS = {
    "success": "SUCCESS",
    "succeeded": "SUCCESS",
    "failure": "FAILED",
    "failed": "FAILED",
    # App Service's HTTP logs write a failed request's result as "Fail".
    "fail": "FAILED",
    "start": "STARTED",
    "started": "STARTED",
    "accept": "ACCEPTED",
    "accepted": "ACCEPTED",
}
_UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
_NAME_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
_TENANT_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"


class _Evidence(msgspec.Struct):
    principalType: str | None = None
    role: str | None = None


class _Authorization(msgspec.Struct):
    action: str | None = None
    scope: str | None = None
    evidence: _Evidence | None = None


class _Identity(msgspec.Struct):
    authorization: _Authorization | None = None
    claims: dict[str, Any] | None = None


class _HttpRequest(msgspec.Struct):
    clientIpAddress: str | None = None


class ActivityRecord(msgspec.Struct):
    """The Activity Log fields hubsight reads, in both delivered shapes."""

    time: str | None = None
    eventTimestamp: str | None = None
    submissionTimestamp: str | None = None
    category: LocalizedText = None
    operationName: LocalizedText = None
    eventName: LocalizedText = None
    resultType: LocalizedText = None
    status: LocalizedText = None
    resourceProviderName: LocalizedText = None
    resourceType: LocalizedText = None
    callerIpAddress: str | None = None
    httpRequest: _HttpRequest | None = None
    caller: str | None = None
    identity: _Identity | str | None = None
    claims: dict[str, Any] | None = None
    authorization: _Authorization | None = None
    correlationId: str | None = None
    tenantId: str | None = None
    subscriptionId: str | None = None
    resourceId: str | None = None
    level: int | str | None = None
    Level: int | str | None = None
    description: str | None = None
    # Event Hubs and storage carry the REST ``description`` as ``resultDescription``.
    resultDescription: str | None = None
    properties: dict[str, Any] | str | None = None


ACTIVITY_DECODER = TolerantDecoder(ActivityRecord, probe="operationName")
_properties_decoder = msgspec.json.Decoder(dict[str, Any])


def decode_activity(record: bytes) -> ActivityRecord:
    """Decode an Activity Log record of either shape."""
    return ACTIVITY_DECODER.decode(record)


def properties_of(head: ActivityRecord) -> dict[str, Any]:
    """``properties`` as a dict, decoding it when Azure sent it as JSON inside a string.

    Microsoft's mapping of the REST schema to the Event Hubs one puts the REST ``properties``
    under ``properties.eventProperties``; when a record nests them so, they are lifted beside
    the envelope's own keys (which win), so each category reads one flat bag either way.
    """
    props = _decoded(head.properties)
    nested = _decoded(lookup(props, "eventProperties")) if props else {}
    return {**nested, **props} if nested else props


def _decoded(value: object) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            return _properties_decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return {}
    return value if isinstance(value, dict) else {}


def lookup(mapping: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``mapping``, matched case-insensitively."""
    for key in keys:
        if key in mapping:
            return mapping[key]
    lowered = {str(k).lower(): v for k, v in mapping.items()}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()]
    return None


def activity_event(
    record: bytes, ctx: RecordContext, head: ActivityRecord, log_set: LogSet, geoip: GeoIP
) -> Event:
    """The fields every Activity Log category shares."""
    category = text_of(head.category)
    event = new_event(
        record,
        ctx,
        log_set=log_set,
        category=category,
        timestamp=first_time(head.eventTimestamp, head.time),
        azure_time=first_time(head.time, head.submissionTimestamp),
    )
    operation = text_of(head.operationName)
    event.operation = operation
    event.result = normalize_result(text_of(head.resultType) or text_of(head.status))
    event.severity = severity_of(head.level if head.level is not None else head.Level)
    event.correlation_id = head.correlationId or None
    event.resource_id = head.resourceId or None
    event.subscription_id = guid(head.subscriptionId or subscription_of(head.resourceId))
    event.service = text_of(head.resourceProviderName) or provider_of(operation)
    event.description = head.description or head.resultDescription or None
    identity = head.identity if isinstance(head.identity, _Identity) else None
    claims = (identity.claims if identity else None) or head.claims or {}
    event.tenant_id = guid(head.tenantId or nonempty(claims.get(_TENANT_CLAIM)))
    caller = head.caller or (head.identity if isinstance(head.identity, str) else None)
    upn = nonempty(claims.get(_UPN_CLAIM)) or nonempty(claims.get(_NAME_CLAIM))
    user = caller if caller and "@" in caller else upn
    if user:
        set_user(event, user.strip(), ctx.default_domain)
        event.actor_type = "user"
    elif caller or claims.get("appid"):
        event.actor_type = "service_principal"
        event.initiated_by_app = caller or nonempty(claims.get("appid"))
    address = head.callerIpAddress or (
        head.httpRequest.clientIpAddress if head.httpRequest else None
    )
    set_source(event, address or nonempty(claims.get("ipaddr")), geoip)
    return event


class ActivityParser:
    """Normalizes the administrative and service-health categories of the Activity Log."""

    categories = ADMIN_CATEGORIES + SERVICE_CATEGORIES

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._admin = frozenset(c.lower() for c in ADMIN_CATEGORIES)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one Activity Log record."""
        head = decode_activity(record)
        category = (text_of(head.category) or "").lower()
        if category in self._admin:
            return blanks_to_none(self._admin_event(record, ctx, head))
        return blanks_to_none(self._service_event(record, ctx, head))

    def _admin_event(self, record: bytes, ctx: RecordContext, head: ActivityRecord) -> Event:
        event = activity_event(record, ctx, head, LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, self._geoip)
        identity = head.identity if isinstance(head.identity, _Identity) else None
        authorization = (identity.authorization if identity else None) or head.authorization
        operation = event.operation or (authorization.action if authorization else None)
        event.operation = operation
        event.action = operation.rsplit("/", 1)[-1].lower() if operation else None
        event.target_resource = name_of(head.resourceId)
        event.target_type = text_of(head.resourceType) or type_of(head.resourceId)
        evidence = authorization.evidence if authorization else None
        if event.user is None and evidence is not None and evidence.principalType:
            event.actor_type = _actor_type(evidence.principalType)
        props = properties_of(head)
        body = lookup(props, "requestbody")
        if body:
            # The same shape as audit changes: what was asked for is the new value.
            change = {"name": "requestBody", "old": None, "new": json_value(body)}
            event.modified_properties = encode_json([change])
        return event

    def _service_event(self, record: bytes, ctx: RecordContext, head: ActivityRecord) -> Event:
        event = activity_event(record, ctx, head, LogSet.CLOUD_SERVICE_ACTIVITY, self._geoip)
        props = properties_of(head)
        # Autoscale says what it did in properties.Description (Event Hubs shape).
        title = nonempty(lookup(props, "title", "RuleName", "Description", "recommendationType"))
        event.description = event.description or title or nonempty(lookup(props, "details"))
        event.status = nonempty(lookup(props, "stage", "currentHealthStatus", "healthStatus"))
        event.status = event.status or text_of(head.status)
        service = nonempty(lookup(props, "service"))
        if service:
            event.service = service
        if (event.category or "").lower() == "alert":
            event.alert_name = nonempty(lookup(props, "RuleName", "alertRuleName"))
        impact = lookup(props, "recommendationImpact")
        if impact is not None:
            event.severity = severity_of(impact) or event.severity
        event.target_resource = name_of(head.resourceId)
        event.target_type = text_of(head.resourceType) or type_of(head.resourceId)
        return event


def normalize_result(value: str | None) -> str | None:
    """Activity Log results as SUCCESS / FAILED / STARTED / ACCEPTED, others upper-cased."""
    if not value:
        return None
    return _RESULTS.get(value.lower(), value.upper())


def guid(value: str | None) -> str | None:
    """An id as searched: Azure ids are case-insensitive and resource ids are often upper-case."""
    return value.lower() if value else None


def subscription_of(resource_id: str | None) -> str | None:
    """The subscription id inside an Azure resource id, or None."""
    if not resource_id:
        return None
    parts = resource_id.split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == "subscriptions":
            return parts[index + 1] or None
    return None


def name_of(resource_id: str | None) -> str | None:
    """The last name in a resource id (the resource itself)."""
    if not resource_id:
        return None
    return resource_id.rstrip("/").rsplit("/", 1)[-1] or None


def type_of(resource_id: str | None) -> str | None:
    """``Provider/type[/subtype]`` from a resource id, or None when it names no provider."""
    if not resource_id:
        return None
    parts = resource_id.strip("/").split("/")
    lowered = [part.lower() for part in parts]
    if "providers" not in lowered:
        return None
    index = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = parts[index + 1 :]
    if len(rest) < 2:
        return None
    # provider, then alternating type/name pairs: keep the types.
    return "/".join([rest[0], *rest[1::2]])


def provider_of(operation: str | None) -> str | None:
    """The resource provider an operation belongs to (``Microsoft.Network``), or None."""
    if not operation or "/" not in operation:
        return None
    return operation.split("/", 1)[0]


def _actor_type(principal_type: str) -> str:
    lowered = principal_type.lower()
    if lowered == "user":
        return "user"
    if "managed" in lowered:
        return "managed_identity"
    return "service_principal"
