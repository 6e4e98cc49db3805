"""Entra ID Protection: risk detections (alerts) and the risky-user / risky-workload states.

A risk detection (``UserRiskEvents``, ``ServicePrincipalRiskEvents``) is an alert raised by
Microsoft and goes to Third Party Alerts; the risk state of a user or service principal
(``RiskyUsers``, ``RiskyServicePrincipals``) is a status change and goes to Cloud Service Activity.
"""

from __future__ import annotations

import msgspec

from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    EntraLocation,
    TolerantDecoder,
    blanks_to_none,
    embedded,
    entra_location,
    first_time,
    json_value,
    new_event,
    set_source,
    set_user,
    severity_of,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet

DETECTION_CATEGORIES = ("UserRiskEvents", "ServicePrincipalRiskEvents")
STATE_CATEGORIES = ("RiskyUsers", "RiskyServicePrincipals")
_PRODUCT = "Microsoft Entra ID Protection"
# Entra's risk-event types map onto ATT&CK tactics: credential theft vs. suspicious sign-in.
_TACTICS = {
    "leakedcredentials": "CredentialAccess",
    "passwordspray": "CredentialAccess",
    "mcasimpossibletravel": "InitialAccess",
    "impossibletravel": "InitialAccess",
    "unfamiliarfeatures": "InitialAccess",
    "anonymizedipaddress": "InitialAccess",
    "maliciousipaddress": "InitialAccess",
    "anomaloustoken": "CredentialAccess",
    "tokenissueranomaly": "CredentialAccess",
    "attackertinthemiddle": "CredentialAccess",
    "mcasfinanciallymalicious": "Collection",
    "mcassuspiciousinboxmanipulationrules": "Persistence",
}


class _Properties(msgspec.Struct):
    id: str | None = None
    riskEventType: str | None = None
    riskType: str | None = None
    riskLevel: str | None = None
    riskState: str | None = None
    riskDetail: str | None = None
    source: str | None = None
    activity: str | None = None
    ipAddress: str | None = None
    location: EntraLocation | None = None
    activityDateTime: str | None = None
    detectedDateTime: str | None = None
    riskLastUpdatedDateTime: str | None = None
    lastUpdatedDateTime: str | None = None
    userPrincipalName: str | None = None
    servicePrincipalDisplayName: str | None = None
    appId: str | None = None
    correlationId: str | None = None
    additionalInfo: str | list[object] | None = None


class _Record(msgspec.Struct):
    time: str | None = None
    category: str | None = None
    operationName: str | None = None
    correlationId: str | None = None
    tenantId: str | None = None
    resourceId: str | None = None
    callerIpAddress: str | None = None
    properties: _Properties | str | None = None


class RiskParser:
    """Normalizes Entra ID Protection records."""

    categories = DETECTION_CATEGORIES + STATE_CATEGORIES

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._record = TolerantDecoder(_Record, probe="operationName")
        self._properties = TolerantDecoder(_Properties)
        self._detections = frozenset(c.lower() for c in DETECTION_CATEGORIES)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one risk detection or risk-state record."""
        head = self._record.decode(record)
        props = embedded(head.properties, self._properties) or _Properties()
        category = head.category or "UserRiskEvents"
        detection = category.lower() in self._detections
        event = new_event(
            record,
            ctx,
            log_set=LogSet.THIRD_PARTY_ALERTS if detection else LogSet.CLOUD_SERVICE_ACTIVITY,
            category=category,
            timestamp=first_time(
                props.activityDateTime,
                props.detectedDateTime,
                props.riskLastUpdatedDateTime,
                props.lastUpdatedDateTime,
                head.time,
            ),
            azure_time=first_time(head.time),
        )
        event.operation = head.operationName
        event.service = _PRODUCT
        event.risk_level = props.riskLevel
        event.risk_state = props.riskState
        event.status = props.riskState
        event.correlation_id = head.correlationId or props.correlationId
        event.tenant_id = head.tenantId
        event.resource_id = head.resourceId
        set_user(event, props.userPrincipalName, ctx.default_domain)
        workload = "serviceprincipal" in category.lower()
        event.actor_type = "service_principal" if workload else "user"
        event.application = props.servicePrincipalDisplayName
        event.application_id = props.appId
        if detection:
            risk_type = props.riskEventType or props.riskType
            event.alert_id = props.id
            event.alert_type = risk_type
            event.alert_name = risk_type
            event.severity = severity_of(props.riskLevel)
            event.description = props.riskDetail
            event.vendor = "Microsoft"
            event.product = _PRODUCT
            tactic = _TACTICS.get((risk_type or "").lower())
            event.mitre_tactics = [tactic] if tactic else None
            info = json_value(props.additionalInfo)
            if isinstance(info, list):
                event.entities = msgspec.Raw(msgspec.json.encode(info))
        else:
            event.description = props.riskDetail
        set_source(
            event,
            props.ipAddress or head.callerIpAddress,
            self._geoip,
            entra_location(props.location, None),
        )
        return blanks_to_none(event)
