"""Azure Storage data-plane logs: ``StorageRead``, ``StorageWrite``, ``StorageDelete``.

Microsoft's storage resource-log schema: ``operationName`` (``GetBlob``, ``PutBlob``,
``DeleteBlob``, ...), ``statusCode``/``statusText``, ``callerIpAddress`` with its port,
``identity.type`` (how the request was authorized: OAuth, Kerberos, SAS, AccountKey, Anonymous),
``identity.requester`` (the Entra caller of an OAuth request), ``uri`` and
``properties.objectKey`` (the object, as ``/account/container/blob``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from hubsight.parsing.azure.activity import guid, lookup
from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    TolerantDecoder,
    as_int,
    blanks_to_none,
    nonempty,
    set_user,
)
from hubsight.parsing.azure.resourcelog import ResourceLogRecord, properties, resource_event
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet

STORAGE_CATEGORIES = ("StorageRead", "StorageWrite", "StorageDelete")
# identity.type as Storage writes it (and as its documentation spells it) -> one name each.
_AUTH_TYPES = {
    "oauth": "OAuth",
    "kerberos": "Kerberos",
    "sas": "SAS",
    "saskey": "SAS",
    "trustedaccesssas": "SAS",
    "accountkey": "AccountKey",
    "anonymous": "Anonymous",
}


class _StorageRecord(ResourceLogRecord):
    """The common fields plus Storage's own top-level ones."""

    statusCode: int | str | None = None
    statusText: str | None = None
    uri: str | None = None
    protocol: str | None = None


class StorageParser:
    """Normalizes Storage data-plane logs into File Access Activity."""

    categories = STORAGE_CATEGORIES

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._decoder = TolerantDecoder(_StorageRecord, probe="category")

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one storage request record."""
        head = self._decoder.decode(record)
        props = properties(head)
        event = resource_event(record, ctx, head, props, LogSet.FILE_ACCESS_ACTIVITY, self._geoip)
        event.service = "Azure Storage"
        status = as_int(head.statusCode)
        event.http_status = status
        status_text = nonempty(head.statusText)
        if status is not None:
            event.result = "SUCCESS" if status < 400 else "FAILED"
        elif status_text:
            event.result = "SUCCESS" if status_text.lower() == "success" else "FAILED"
        event.status = status_text
        if event.result == "FAILED":
            event.failure_reason = status_text
        identity = head.identity if isinstance(head.identity, dict) else {}
        event.auth_type = auth_type(nonempty(lookup(identity, "type")))
        requester = lookup(identity, "requester")
        if isinstance(requester, dict):
            _set_requester(event, requester, ctx.default_domain)
        account = nonempty(lookup(props, "accountName")) or account_of(head.resourceId)
        event.target_resource = account.lower() if account else event.target_resource
        event.object_path = object_path(
            nonempty(lookup(props, "objectKey")), nonempty(head.uri), account
        )
        event.url = nonempty(head.uri)
        event.user_agent = nonempty(lookup(props, "userAgentHeader"))
        event.protocol = nonempty(head.protocol)
        return blanks_to_none(event)


def _set_requester(event: Event, requester: dict[str, Any], default_domain: str | None) -> None:
    upn = nonempty(lookup(requester, "upn"))
    if upn and "@" in upn:
        set_user(event, upn, default_domain)
        event.actor_type = "user"
    event.user_id = guid(nonempty(lookup(requester, "objectId"))) or event.user_id
    event.application_id = guid(nonempty(lookup(requester, "appId"))) or event.application_id
    if event.user is None and (event.user_id or event.application_id):
        event.actor_type = "service_principal"


def auth_type(value: str | None) -> str | None:
    """How a storage request was authorized, as one of OAuth/Kerberos/SAS/AccountKey/Anonymous."""
    if not value:
        return None
    return _AUTH_TYPES.get(value.replace(" ", "").lower(), value)


def account_of(resource_id: str | None) -> str | None:
    """The storage account in a resource id (whose last name is the ``default`` service)."""
    parts = (resource_id or "").split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == "storageaccounts":
            return parts[index + 1] or None
    return None


def object_path(key: str | None, uri: str | None, account: str | None) -> str | None:
    """The object a request touched, ``/container/blob``: from the object key, else the URI."""
    if key:
        path = unquote(key.strip('"'))
        if account and path.lower().startswith(f"/{account.lower()}/"):
            path = path[len(account) + 1 :]
        return path or None
    if uri:
        path = unquote(urlsplit(uri).path)
        return path if path not in ("", "/") else None
    return None
