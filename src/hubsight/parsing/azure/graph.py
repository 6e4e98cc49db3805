"""Microsoft Graph activity logs: every request made to the Graph API in the tenant.

The request is described in ``properties`` (Microsoft's ``MicrosoftGraphActivityLogs`` schema):
``requestMethod``, ``requestUri``, ``responseStatusCode``, the caller's ``userId`` /
``servicePrincipalId`` / ``appId``, the token's ``roles`` and ``scopes`` (space-separated) and
``signInActivityId`` (the sign-in that issued the token). The event time is
``properties.timeGenerated``, when Graph received the request; ``time`` is when Azure wrote
the record. The caller is named by object id only: it is resolved to a UPN through the sign-ins
parsed so far, else kept as the id.
"""

from __future__ import annotations

import re

import msgspec

from hubsight.parsing.azure.activity import guid
from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    TolerantDecoder,
    as_int,
    blanks_to_none,
    embedded,
    first_time,
    new_event,
    set_source,
    set_user,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.geoip import GeoIP

GRAPH_CATEGORY = "MicrosoftGraphActivityLogs"
_SERVICE = "Microsoft Graph"
# ``\u0026`` written as text: some relays escape the URI twice, so its query string arrives
# with the escapes still in it.
_TEXT_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


class _Properties(msgspec.Struct):
    timeGenerated: str | None = None
    requestId: str | None = None
    requestMethod: str | None = None
    requestUri: str | None = None
    responseStatusCode: int | str | None = None
    ipAddress: str | None = None
    userAgent: str | None = None
    appId: str | None = None
    servicePrincipalId: str | None = None
    userId: str | None = None
    roles: str | list[str] | None = None
    scopes: str | list[str] | None = None
    signInActivityId: str | None = None
    tenantId: str | None = None
    deviceId: str | None = None
    sessionId: str | None = None


class _Record(msgspec.Struct):
    time: str | None = None
    category: str | None = None
    operationName: str | None = None
    resourceId: str | None = None
    tenantId: str | None = None
    correlationId: str | None = None
    callerIpAddress: str | None = None
    properties: _Properties | str | None = None


class GraphActivityParser:
    """Normalizes ``MicrosoftGraphActivityLogs`` into Cloud Service Activity."""

    categories = (GRAPH_CATEGORY,)

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip: GeoIP = deps.geoip
        self._users = deps.users
        self._record = TolerantDecoder(_Record, probe="category")
        self._properties = TolerantDecoder(_Properties)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one Graph request record."""
        head = self._record.decode(record)
        props = head.properties
        if not isinstance(props, _Properties):
            props = embedded(props, self._properties) or _Properties()
        event = new_event(
            record,
            ctx,
            log_set=LogSet.CLOUD_SERVICE_ACTIVITY,
            category=head.category or GRAPH_CATEGORY,
            timestamp=first_time(props.timeGenerated, head.time),
            azure_time=first_time(head.time),
        )
        event.operation = head.operationName or "Microsoft Graph Activity"
        event.service = _SERVICE
        event.http_method = props.requestMethod.upper() if props.requestMethod else None
        event.url = decode_text_escapes(props.requestUri)
        event.http_status = as_int(props.responseStatusCode)
        event.result = status_result(event.http_status)
        event.user_agent = props.userAgent
        event.application_id = guid(props.appId)
        event.service_principal_id = guid(props.servicePrincipalId)
        event.user_id = guid(props.userId)
        event.roles = split_claim(props.roles)
        event.scopes = split_claim(props.scopes)
        event.signin_activity_id = props.signInActivityId
        event.device_id = props.deviceId
        event.session_id = props.sessionId
        event.correlation_id = head.correlationId or props.requestId
        event.tenant_id = guid(head.tenantId or props.tenantId)
        event.resource_id = head.resourceId
        if event.user_id:
            event.actor_type = "user"
            upn = self._users.upn_of(event.user_id)
            if upn is not None:
                set_user(event, upn, ctx.default_domain)
            else:
                event.user = event.user_id
        elif event.service_principal_id:
            event.actor_type = "service_principal"
        set_source(event, props.ipAddress or head.callerIpAddress, self._geoip)
        return blanks_to_none(event)


def decode_text_escapes(text: str | None) -> str | None:
    """``text`` with ``\\uXXXX`` escapes left in it as text turned into their characters."""
    if not text or "\\u" not in text:
        return text
    return _TEXT_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)


def split_claim(value: str | list[str] | None) -> list[str] | None:
    """A space-separated claim (``roles``, ``scopes``) as a list; None when empty."""
    items = value.split() if isinstance(value, str) else [str(v) for v in value or () if v]
    return items or None


def status_result(status: int | None) -> str | None:
    """SUCCESS for a 1xx-3xx HTTP status, FAILED for 4xx and 5xx, None when there is none."""
    if status is None:
        return None
    return "SUCCESS" if status < 400 else "FAILED"
