"""Defender for Cloud alerts: Activity Log ``Security`` records and continuous-export objects.

Continuous export to an Event Hub sends the alert object itself: PascalCase keys, no Azure
Monitor envelope and no ``category``, and entities that refer to each other with ``$id`` /
``$ref`` (a process entity points at its host by ``{"$ref": "3"}``). References are resolved so
each entity stands on its own when stored and searched.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hubsight.parsing.azure.activity import (
    activity_event,
    decode_activity,
    guid,
    lookup,
    properties_of,
    subscription_of,
)
from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
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

SECURITY_ALERT = "SecurityAlert"
_PRODUCT = "Microsoft Defender for Cloud"
_VENDOR = "Microsoft"
_MAX_ENTITY_DEPTH = 8


class _Alert(msgspec.Struct):
    SystemAlertId: str | None = None
    AlertType: str | None = None
    AlertDisplayName: str | None = None
    AlertName: str | None = None
    Description: str | None = None
    Severity: str | None = None
    Status: str | None = None
    VendorName: str | None = None
    ProductName: str | None = None
    CompromisedEntity: str | None = None
    Intent: str | None = None
    Tactics: list[str] | str | None = None
    RemediationSteps: list[str] | str | None = None
    Entities: list[Any] | str | None = None
    StartTimeUtc: str | None = None
    TimeGenerated: str | None = None
    EventTimeString: str | None = None
    ProcessingEndTime: str | None = None
    AzureResourceId: str | None = None
    ResourceId: str | None = None
    WorkspaceSubscriptionId: str | None = None
    TenantId: str | None = None
    CorrelationKey: str | None = None


def is_security_alert(record: bytes) -> bool:
    """Whether a record without an Azure category is a continuous-export alert object."""
    return b'"SystemAlertId"' in record or (
        b'"AlertType"' in record and (b'"VendorName"' in record or b'"ProductName"' in record)
    )


class DefenderParser:
    """Normalizes Defender for Cloud alerts into Third Party Alerts."""

    categories = ("Security", SECURITY_ALERT)

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._alert = TolerantDecoder(_Alert)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize an Activity Log ``Security`` record or an exported alert object."""
        if is_security_alert(record):
            return blanks_to_none(self._exported(record, ctx))
        return blanks_to_none(self._activity(record, ctx))

    def _activity(self, record: bytes, ctx: RecordContext) -> Event:
        head = decode_activity(record)
        event = activity_event(record, ctx, head, LogSet.THIRD_PARTY_ALERTS, self._geoip)
        props = properties_of(head)
        event.vendor = _VENDOR
        event.product = _PRODUCT
        event.alert_id = nonempty(lookup(props, "alertId", "systemAlertId")) or _alert_id_of(
            head.resourceId
        )
        event.alert_name = (
            nonempty(lookup(props, "alertDisplayName", "alertName", "eventName"))
            or text_of(head.eventName)
            or _first_sentence(head.description)
        )
        event.alert_type = nonempty(lookup(props, "alertType"))
        event.severity = severity_of(lookup(props, "severity")) or event.severity
        event.status = nonempty(lookup(props, "status")) or event.result
        event.compromised_entity = nonempty(lookup(props, "compromisedEntity"))
        # Event Hubs deliver the alert's text and its attacker's address only in properties.
        event.description = event.description or nonempty(lookup(props, "description"))
        if event.source_ip is None:
            address = lookup(props, "clientIPAddress", "attackerSourceIP", "sourceIPAddress")
            set_source(event, nonempty(address), self._geoip)
        event.remediation = _remediation(lookup(props, "remediationSteps"))
        event.mitre_tactics = _tactics(lookup(props, "intent", "tactics"))
        account = nonempty(lookup(props, "userName", "accountName"))
        if account and event.user is None:
            domain = nonempty(lookup(props, "domainName"))
            set_user(event, f"{domain}\\{account}" if domain else account, ctx.default_domain)
        return event

    def _exported(self, record: bytes, ctx: RecordContext) -> Event:
        alert = self._alert.decode(record)
        event = new_event(
            record,
            ctx,
            log_set=LogSet.THIRD_PARTY_ALERTS,
            category=SECURITY_ALERT,
            timestamp=first_time(alert.StartTimeUtc, alert.EventTimeString, alert.TimeGenerated),
            azure_time=first_time(alert.TimeGenerated, alert.ProcessingEndTime),
        )
        event.operation = "Security alert"
        event.alert_id = alert.SystemAlertId
        event.alert_type = alert.AlertType
        event.alert_name = alert.AlertDisplayName or alert.AlertName
        event.description = alert.Description
        event.severity = severity_of(alert.Severity)
        event.status = alert.Status
        event.vendor = alert.VendorName or _VENDOR
        event.product = alert.ProductName or _PRODUCT
        event.service = event.product
        event.compromised_entity = alert.CompromisedEntity
        event.remediation = _remediation(alert.RemediationSteps)
        event.mitre_tactics = _tactics(alert.Tactics) or _tactics(alert.Intent)
        event.resource_id = alert.AzureResourceId or alert.ResourceId
        event.subscription_id = guid(
            alert.WorkspaceSubscriptionId or subscription_of(event.resource_id)
        )
        event.tenant_id = guid(alert.TenantId)
        event.correlation_id = alert.CorrelationKey
        entities = resolve_entities(json_value(alert.Entities))
        event.entities = encode_json(entities)
        account, address = _account_and_address(entities)
        set_user(event, account, ctx.default_domain)
        set_source(event, address, self._geoip)
        return event


def resolve_entities(value: object) -> list[Any]:
    """Entities with every ``{"$ref": id}`` replaced by the entity carrying that ``$id``."""
    if not isinstance(value, list):
        return []
    by_id: dict[str, dict[str, Any]] = {}
    _collect_ids(value, by_id, 0)
    return [_resolve(item, by_id, 0) for item in value if not _is_ref_only(item)]


def _collect_ids(value: object, by_id: dict[str, dict[str, Any]], depth: int) -> None:
    if depth > _MAX_ENTITY_DEPTH:
        return
    if isinstance(value, dict):
        if "$id" in value:
            by_id[str(value["$id"])] = value
        for item in value.values():
            _collect_ids(item, by_id, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect_ids(item, by_id, depth + 1)


def _resolve(value: object, by_id: dict[str, dict[str, Any]], depth: int) -> Any:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if ref is not None and len(value) == 1:
            target = by_id.get(str(ref))
            if target is None or depth >= _MAX_ENTITY_DEPTH:
                return value  # unknown or too deep (a cycle): keep the reference as sent
            return _resolve(target, by_id, depth + 1)
        return {k: _resolve(v, by_id, depth + 1) for k, v in value.items() if k != "$id"}
    if isinstance(value, list):
        return [_resolve(item, by_id, depth + 1) for item in value]
    return value


def _is_ref_only(item: object) -> bool:
    # A top-level {"$ref": ...} repeats an entity already listed in full.
    return isinstance(item, dict) and set(item) == {"$ref"}


def _account_and_address(entities: list[Any]) -> tuple[str | None, str | None]:
    account: str | None = None
    address: str | None = None
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        kind = str(entity.get("Type") or entity.get("type") or "").lower()
        if kind == "account" and account is None:
            name = nonempty(lookup(entity, "UserPrincipalName", "Upn"))
            if name is None:
                base = nonempty(lookup(entity, "Name"))
                suffix = nonempty(lookup(entity, "UPNSuffix", "UpnSuffix"))
                ntdomain = nonempty(lookup(entity, "NTDomain"))
                host = _host_name(lookup(entity, "Host"))
                if base and suffix:
                    name = f"{base}@{suffix}"
                elif base and ntdomain:
                    name = f"{ntdomain}\\{base}"
                elif base and host:
                    # An account known only on its machine (a VM's local admin) is that
                    # machine's, as Windows writes it: not a user of the tenant's domain.
                    name = f"{host}\\{base}"
                else:
                    name = base
            account = name
        elif kind == "ip" and address is None:
            address = nonempty(lookup(entity, "Address"))
    return account, address


def _host_name(host: object) -> str | None:
    """The name of a resolved host entity (``HostName``, else ``NetBiosName``), or None."""
    if not isinstance(host, dict):
        return None
    return nonempty(lookup(host, "HostName", "NetBiosName"))


def _remediation(value: object) -> str | None:
    value = json_value(value)
    if isinstance(value, list):
        steps = [str(step) for step in value if step]
        return "\n".join(steps) or None
    return nonempty(value)


def _tactics(value: object) -> list[str] | None:
    value = json_value(value)
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return None
    tactics = [str(item).strip() for item in value if str(item).strip()]
    tactics = [t for t in tactics if t.lower() not in ("unknown", "none")]
    return tactics or None


def _alert_id_of(resource_id: str | None) -> str | None:
    if resource_id and "/alerts/" in resource_id.lower():
        return resource_id.rstrip("/").rsplit("/", 1)[-1]
    return None


def _first_sentence(text: str | None) -> str | None:
    if not text:
        return None
    return text.split(". ", 1)[0].split("\n", 1)[0].strip() or None
