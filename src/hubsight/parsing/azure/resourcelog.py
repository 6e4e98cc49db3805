"""Azure Monitor's common resource-log schema, and the parser for every category without its own.

Every resource log (Key Vault, Storage, Event Hubs, App Service, ...) shares top-level fields:
``time``, ``resourceId``, ``category``, ``operationName``, ``resultType``, ``resultSignature``,
``callerIpAddress``, ``correlationId``, ``identity``, ``level``, ``location`` and
``properties``. The family parsers build on ``resource_event``; a category nobody claims but
which has this shape is still normalized, as Cloud Service Activity, by ``ResourceLogParser``.
The event time is always the record's own (``time``, else a ``TimeGenerated``/``EventTimeString``
style field), never when hubsight received it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec

from hubsight.parsing.azure.activity import (
    guid,
    lookup,
    name_of,
    normalize_result,
    provider_of,
    subscription_of,
    type_of,
)
from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.graph import status_result
from hubsight.parsing.azure.normalize import (
    TolerantDecoder,
    as_int,
    blanks_to_none,
    first_time,
    new_event,
    nonempty,
    set_source,
    set_user,
    severity_of,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.geoip import GeoIP

# Claims as Azure writes them in ``identity.claim``: short names or the full claim URIs.
_OID_CLAIMS = ("oid", "http://schemas.microsoft.com/identity/claims/objectidentifier")
_UPN_CLAIMS = (
    "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "unique_name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
)
_APPID_CLAIMS = ("appid", "azp")
# Fields other than ``time`` that carry a record's own time, in the order they are trusted.
_TIME_KEYS = (
    "TimeGenerated",
    "timeGenerated",
    "EventTimeString",
    "eventTimestamp",
    "event_time",
    "timestamp",
    "timeStamp",
    "Timestamp",
)
_PROVIDER = re.compile(r"/providers/([^/]+)", re.IGNORECASE)
# The top-level time keys, lower-cased, that make a record's head look like a resource log.
_TIME_MARKERS = (b'"time"', b'"eventtimestring"', b'"timegenerated"', b'"timestamp"')
# Where services name the client address, its HTTP status, inside ``properties``.
_CLIENT_KEYS = ("CIp", "clientIP", "clientIp", "UserAddress", "client_ip")
_STATUS_KEYS = ("ScStatus", "httpStatus", "httpStatusCode", "StatusCode")


class ResourceLogRecord(msgspec.Struct):
    """The common resource-log fields."""

    time: str | None = None
    TimeGenerated: str | None = None
    EventTimeString: str | None = None
    timeStamp: str | None = None
    timestamp: str | None = None
    resourceId: str | None = None
    tenantId: str | None = None
    category: str | None = None
    operationName: str | None = None
    # Event Hubs' and Service Bus's operational logs name the operation ``EventName``.
    EventName: str | None = None
    resultType: str | None = None
    # Event Hubs' OperationalLogs (and a few others) report the outcome as ``Status``.
    Status: str | None = None
    status: str | None = None
    resultSignature: str | int | None = None
    resultDescription: str | None = None
    callerIpAddress: str | None = None
    correlationId: str | None = None
    identity: dict[str, Any] | str | None = None
    level: str | int | None = None
    properties: dict[str, Any] | str | None = None


RESOURCE_LOG_DECODER = TolerantDecoder(ResourceLogRecord, probe="category")
_properties_decoder = msgspec.json.Decoder(dict[str, Any])


def decode_resource_log(record: bytes) -> ResourceLogRecord:
    """Decode the common fields of a resource log record."""
    return RESOURCE_LOG_DECODER.decode(record)


def is_resource_log(record: bytes) -> bool:
    """Whether a record has the common schema: a category, and a time or resource it names.

    An operation name is not required: App Service's HTTP logs carry ``time``, ``resourceId``,
    ``category`` and ``properties`` only, and Event Hubs' and Service Bus's operational logs
    ``EventName``, ``EventTimeString``, ``resourceId`` and ``category``; so a record with a
    category, a time and a resource is read as well as one with a category, an operation and
    either.
    """
    head = record[:4096].lower()
    if b'"category"' not in head:
        return False
    has_time = any(key in head for key in _TIME_MARKERS)
    has_resource = b'"resourceid"' in head
    if b'"operationname"' in head:
        return has_time or has_resource
    return has_time and has_resource


def properties(head: ResourceLogRecord) -> dict[str, Any]:
    """``properties`` as a dict, decoding it when Azure sent it as JSON inside a string."""
    value = head.properties
    if isinstance(value, str):
        try:
            return _properties_decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return {}
    return value or {}


def record_time(head: ResourceLogRecord, props: dict[str, Any]) -> datetime | None:
    """When the record says it happened: ``time``, else the first time-like field it carries."""
    return first_time(
        head.time,
        head.TimeGenerated,
        head.EventTimeString,
        head.timeStamp,
        head.timestamp,
        *(props.get(key) for key in _TIME_KEYS),
    )


def claims(head: ResourceLogRecord) -> dict[str, Any]:
    """The caller's token claims (``identity.claim``), or an empty dict."""
    identity = head.identity
    if not isinstance(identity, dict):
        return {}
    found = lookup(identity, "claim", "claims")
    return found if isinstance(found, dict) else {}


def claim(values: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The first of the named claims present as a non-empty string."""
    for name in names:
        value = nonempty(values.get(name))
        if value is not None:
            return value
    return None


def set_caller(event: Event, values: dict[str, Any], default_domain: str | None) -> None:
    """Fill user, object id, application id and actor type from token claims."""
    upn = claim(values, _UPN_CLAIMS)
    if upn and "#" in upn:  # guests appear as "live.com#name@outlook.com"
        upn = upn.rsplit("#", 1)[-1]
    oid = claim(values, _OID_CLAIMS)
    app = claim(values, _APPID_CLAIMS)
    if upn and "@" in upn:
        set_user(event, upn, default_domain)
    event.user_id = guid(oid) or event.user_id
    event.application_id = guid(app) or event.application_id
    if event.user is not None:
        event.actor_type = "user"
        return
    if nonempty(values.get("xms_mirid")):
        event.actor_type = "managed_identity"
    elif app or oid:
        event.actor_type = "service_principal"
    # Without a UPN the object id is a workload's: its service principal.
    event.service_principal_id = guid(oid) or event.service_principal_id


def provider(resource_id: str | None) -> str | None:
    """The resource provider named in a resource id (``Microsoft.KeyVault``), as written there."""
    matches = _PROVIDER.findall(resource_id or "")
    return str(matches[-1]) if matches else None


def read_resource_log(
    record: bytes, ctx: RecordContext, log_set: LogSet, geoip: GeoIP
) -> tuple[Event, ResourceLogRecord, dict[str, Any]]:
    """Decode a common-schema record: its event of shared fields, its head and its properties."""
    head = decode_resource_log(record)
    props = properties(head)
    return resource_event(record, ctx, head, props, log_set, geoip), head, props


def resource_event(
    record: bytes,
    ctx: RecordContext,
    head: ResourceLogRecord,
    props: dict[str, Any],
    log_set: LogSet,
    geoip: GeoIP,
) -> Event:
    """The fields every resource log shares."""
    event = new_event(
        record,
        ctx,
        log_set=log_set,
        category=head.category,
        timestamp=record_time(head, props),
        azure_time=first_time(head.time),
    )
    event.operation = head.operationName or head.EventName
    event.result = normalize_result(head.resultType or head.Status or head.status)
    event.severity = severity_of(head.level)
    event.correlation_id = head.correlationId
    event.resource_id = head.resourceId
    event.subscription_id = guid(subscription_of(head.resourceId))
    event.tenant_id = guid(head.tenantId)
    # Resource logs often upper-case the whole resource id; Azure names are case-insensitive,
    # so such an id is read in lower case rather than shouting in every search result.
    resource_id = (
        head.resourceId.lower()
        if head.resourceId and head.resourceId.isupper()
        else head.resourceId
    )
    event.service = provider(resource_id) or provider_of(head.operationName)
    event.target_resource = name_of(resource_id)
    event.target_type = type_of(resource_id)
    event.description = head.resultDescription
    set_caller(event, claims(head), ctx.default_domain)
    set_source(event, head.callerIpAddress, geoip)
    return event


class ResourceLogParser:
    """Normalizes any resource log in the common schema into Cloud Service Activity."""

    # Claims no category by name: the registry hands it records whose category no other parser
    # claims but which have the common shape.
    categories: tuple[str, ...] = ()

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one resource log record by its common fields."""
        event, head, props = read_resource_log(
            record, ctx, LogSet.CLOUD_SERVICE_ACTIVITY, self._geoip
        )
        read_request(event, props, self._geoip, ctx.default_domain)
        if event.result is None and head.resultSignature is not None:
            event.result = normalize_result(str(head.resultSignature))
        return blanks_to_none(event)


def read_request(
    event: Event, props: dict[str, Any], geoip: GeoIP, default_domain: str | None
) -> None:
    """Fill what a service logs about the request in ``properties`` under its own names.

    Many services name no ``callerIpAddress`` and no ``resultType`` at the top: App Service
    writes the client as ``CIp`` (HTTP and access-restriction logs) or ``UserAddress`` (FTP and
    deployment logins), its outcome as ``Result`` and the status as ``ScStatus``; Application
    Gateway and Front Door access logs write ``clientIP`` and ``httpStatus``. The top-level
    fields, when present, win.
    """
    if event.source_ip is None:
        set_source(event, nonempty(lookup(props, *_CLIENT_KEYS)), geoip)
        if event.source_ip is not None and event.source_port is None:
            event.source_port = as_int(lookup(props, "clientPort"))
    if event.http_status is None:
        event.http_status = as_int(lookup(props, *_STATUS_KEYS))
    if event.result is None:
        result = nonempty(lookup(props, "Result", "result"))
        event.result = normalize_result(result) if result else status_result(event.http_status)
    method = nonempty(lookup(props, "CsMethod", "httpMethod"))
    event.http_method = event.http_method or (method.upper() if method else None)
    event.url = event.url or nonempty(lookup(props, "CsUriStem", "requestUri"))
    event.fqdn = event.fqdn or nonempty(lookup(props, "CsHost", "hostName"))
    event.user_agent = event.user_agent or nonempty(lookup(props, "UserAgent", "userAgent"))
    if event.user is None:
        # "-" is IIS's empty field; a user name without a domain (an FTP deployment user such
        # as "$app-orders") stays in ``account`` rather than gaining the tenant's domain.
        name = nonempty(lookup(props, "CsUsername", "User"))
        if name and name != "-":
            if "@" in name or "\\" in name:
                set_user(event, name, default_domain)
            else:
                event.account = name
