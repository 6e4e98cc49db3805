"""AKS API-server audit: ``kube-audit`` (every request) and ``kube-audit-admin`` (no reads).

Azure wraps each Kubernetes audit event (``audit.k8s.io/v1`` ``Event``) in a resource log whose
``properties.log`` holds the event as JSON text: ``verb``, ``user`` (``username``, ``groups``),
``sourceIPs``, ``objectRef`` (``resource``, ``subresource``, ``namespace``, ``name``),
``responseStatus.code``, ``requestURI``, ``userAgent`` and ``requestReceivedTimestamp``.
"""

from __future__ import annotations

import msgspec

from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    TolerantDecoder,
    blanks_to_none,
    embedded,
    first_time,
    set_source,
    set_user,
)
from hubsight.parsing.azure.resourcelog import (
    ResourceLogRecord,
    decode_resource_log,
    properties,
    resource_event,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet

KUBE_CATEGORIES = ("kube-audit", "kube-audit-admin")
_SERVICE_ACCOUNT = "system:serviceaccount:"


class _User(msgspec.Struct):
    username: str | None = None
    groups: list[str] | None = None


class _ObjectRef(msgspec.Struct):
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None


class _Status(msgspec.Struct):
    code: int | None = None
    message: str | None = None


class _AuditEvent(msgspec.Struct):
    auditID: str | None = None
    verb: str | None = None
    user: _User | None = None
    sourceIPs: list[str] | None = None
    userAgent: str | None = None
    objectRef: _ObjectRef | None = None
    responseStatus: _Status | None = None
    requestURI: str | None = None
    requestReceivedTimestamp: str | None = None
    stageTimestamp: str | None = None


class KubernetesAuditParser:
    """Normalizes AKS audit records into Cloud Service Admin Activity."""

    categories = KUBE_CATEGORIES

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._event = TolerantDecoder(_AuditEvent)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one AKS audit record."""
        head = decode_resource_log(record)
        props = properties(head)
        audit = self._audit_event(head, props)
        event = resource_event(
            record, ctx, head, props, LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, self._geoip
        )
        event.service = "Azure Kubernetes Service"
        event.timestamp = (
            first_time(audit.requestReceivedTimestamp, audit.stageTimestamp) or event.timestamp
        )
        ref = audit.objectRef or _ObjectRef()
        resource = ref.resource
        if resource and ref.subresource:
            resource = f"{resource}/{ref.subresource}"  # e.g. pods/exec: a shell in a pod
        event.action = audit.verb
        event.operation = " ".join(part for part in (audit.verb, resource) if part) or None
        event.target_type = resource
        event.target_resource = ref.name
        event.namespace = ref.namespace
        event.url = audit.requestURI
        event.user_agent = audit.userAgent
        event.correlation_id = audit.auditID or event.correlation_id
        status = audit.responseStatus or _Status()
        event.http_status = status.code
        if status.code is not None:
            event.result = "SUCCESS" if status.code < 400 else "FAILED"
            event.failure_reason = status.message if status.code >= 400 else None
        user = audit.user or _User()
        _set_kube_user(event, user.username, ctx.default_domain)
        event.groups = [g for g in user.groups or () if g] or None
        addresses = [a for a in audit.sourceIPs or () if a]
        event.source_ips = addresses or None
        set_source(event, addresses[0] if addresses else None, self._geoip)
        return blanks_to_none(event)

    def _audit_event(self, head: ResourceLogRecord, props: dict[str, object]) -> _AuditEvent:
        log = props.get("log")
        if isinstance(log, dict):
            return self._event.convert(log)
        found = embedded(log if isinstance(log, str) else None, self._event)
        return found or _AuditEvent()


def _set_kube_user(event: Event, username: str | None, default_domain: str | None) -> None:
    if not username:
        return
    if "@" in username:  # an Entra user signed in through kubelogin
        set_user(event, username, default_domain)
        event.actor_type = "user"
    else:
        # Kubernetes identities (service accounts, masterclient, nodes) are not Entra names.
        event.user = username
        event.actor_type = "service_account" if username.startswith(_SERVICE_ACCOUNT) else "user"
