"""The ``azure`` logsource services: which records each reads and where Sigma's fields are in them.

Sigma's azure rules name Log Analytics columns (``ResultType``, ``ActivityDisplayName``,
``OperationNameValue``, ...) or paths of the record as Event Hubs deliver it
(``properties.targetResources``). Each service maps both, case-insensitively, onto paths of the
Event Hub record; a field it cannot place makes the rule fail to load with that field's name.
Fields starting with ``hubsight:`` are derived from the normalized event (see ``record.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hubsight.parsing.azure.activity import ADMIN_CATEGORIES, SERVICE_CATEGORIES
from hubsight.parsing.azure.audit import AUDIT_CATEGORY
from hubsight.parsing.azure.graph import GRAPH_CATEGORY
from hubsight.parsing.azure.keyvault import KEY_VAULT_CATEGORY
from hubsight.parsing.azure.kubernetes import KUBE_CATEGORIES
from hubsight.parsing.azure.risk import DETECTION_CATEGORIES
from hubsight.parsing.azure.signin import SIGNIN_CATEGORIES
from hubsight.parsing.event import LogSet

VIRTUAL_PREFIX = "hubsight:"
# Derived fields ``hubsight:modified:<displayName>`` read an audit target's modified property.
MODIFIED = "modified:"
PROPERTIES = "properties"

# Keys at the top of every Azure Monitor record, with the Log Analytics names of the same values.
_COMMON: dict[str, str | tuple[str, ...]] = {
    "time": "time",
    "TimeGenerated": "time",
    "resourceId": "resourceId",
    "_ResourceId": "resourceId",
    "operationName": "operationName",
    "operationVersion": "operationVersion",
    "category": "category",
    "tenantId": "tenantId",
    "resultType": "resultType",
    "resultSignature": "resultSignature",
    "resultDescription": "resultDescription",
    "durationMs": "durationMs",
    "callerIpAddress": "callerIpAddress",
    "correlationId": "correlationId",
    "identity": "identity",
    "level": "level",
    "location": "location",
    "properties": "properties",
}


def _under_properties(*columns: str) -> dict[str, str | tuple[str, ...]]:
    # Entra ID records carry the Log Analytics columns under ``properties`` in lower camel case.
    return {column: f"{PROPERTIES}.{_lower_camel(column)}" for column in columns}


def _lower_camel(column: str) -> str:
    # A leading acronym is lowered whole, as the records spell it: IPAddress -> ipAddress.
    # (Paths are matched case-insensitively; this keeps "Open in Log Search" readable.)
    upper = len(column) - len(column.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    cut = upper - 1 if 1 < upper < len(column) else upper
    return column[:cut].lower() + column[cut:]


_SIGNIN: dict[str, str | tuple[str, ...]] = {
    **_under_properties(
        "AppDisplayName",
        "AppId",
        "AuthenticationContextClassReferences",
        "AuthenticationDetails",
        "AuthenticationMethodsUsed",
        "AuthenticationProcessingDetails",
        "AuthenticationProtocol",
        "AuthenticationRequirement",
        "AuthenticationRequirementPolicies",
        "AutonomousSystemNumber",
        "ClientAppUsed",
        "ClientCredentialType",
        "ConditionalAccessStatus",
        "CreatedDateTime",
        "CrossTenantAccessType",
        "DeviceDetail",
        "FederatedCredentialId",
        "FlaggedForReview",
        "HomeTenantId",
        "Id",
        "IncomingTokenType",
        "IPAddress",
        "IsInteractive",
        "IsRisky",
        "MfaDetail",
        "NetworkLocationDetails",
        "OriginalRequestId",
        "ProcessingTimeInMilliseconds",
        "ResourceDisplayName",
        "ResourceServicePrincipalId",
        "ResourceTenantId",
        "RiskDetail",
        "RiskEventTypes",
        "RiskLevelAggregated",
        "RiskLevelDuringSignIn",
        "RiskState",
        "ServicePrincipalId",
        "ServicePrincipalName",
        "SessionId",
        "SessionLifetimePolicies",
        "SignInIdentifier",
        "SignInIdentifierType",
        "TokenIssuerName",
        "TokenIssuerType",
        "UniqueTokenIdentifier",
        "UserAgent",
        "UserDisplayName",
        "UserId",
        "UserPrincipalName",
        "UserType",
    ),
    "ConditionalAccessPolicies": "properties.appliedConditionalAccessPolicies",
    "LocationDetails": "properties.location",
    "ResourceIdentity": "properties.resourceId",
    # Some records carry the code and reason only under properties.status.
    "ResultType": ("resultType", "properties.status.errorCode"),
    "ResultDescription": ("resultDescription", "properties.status.failureReason"),
    # Rules compare Status with Success / Failure (the portal's column) or search its details.
    "Status": ("hubsight:status", "properties.status"),
    # The portal's and older Log Analytics names of the same values.
    "ClientApp": "properties.clientAppUsed",
    "RiskEventTypes_V2": "properties.riskEventTypes_v2",
    "Username": "properties.userPrincipalName",
    # The portal's "Authentication Protocol" (Device Code, ROPC), which SigmaHQ's rules read as
    # properties.message; records hold Graph's enum (deviceCode, ropc).
    "properties.message": ("properties.authenticationProtocol", "hubsight:protocol_label"),
    # The portal's activity of every sign-in record: "Sign-ins".
    "ActivityDetails": "hubsight:sign_ins",
}

_AUDIT: dict[str, str | tuple[str, ...]] = {
    **_under_properties(
        "ActivityDateTime",
        "ActivityDisplayName",
        "AdditionalDetails",
        "Id",
        "InitiatedBy",
        "LoggedByService",
        "Result",
        "ResultReason",
        "TargetResources",
    ),
    "AADOperationType": "properties.operationType",
    "OperationType": "properties.operationType",
    # The audit category (UserManagement, Policy, ...), not the log category "AuditLogs".
    "Category": "properties.category",
    # The portal's Status and Status reason columns.
    "Status": ("properties.result", "properties.resultReason"),
    # SigmaHQ's audit rules use properties.message for the activity ("Add user").
    "properties.message": "properties.activityDisplayName",
    # The portal's Activity Type and Target(s) columns.
    "ActivityType": "properties.activityDisplayName",
    "Target": "properties.targetResources",
    "failure_status_reason": "properties.resultReason",
    # Values Entra ID writes as modified properties of the target (targetResources[].
    # modifiedProperties[] with this displayName), read as their new value.
    **{
        name: f"{VIRTUAL_PREFIX}{MODIFIED}{name}"
        for name in (
            "ConsentAction.Permissions",
            "ConsentAction.Reason",
            "ConsentContext.IsAdminConsent",
            "ConsentContext.IsAppOnly",
            "ConsentContext.OnBehalfOfAll",
            "ConsentContext.Tags",
            "TargetId.ServicePrincipalNames",
        )
    },
}

_RISK: dict[str, str | tuple[str, ...]] = {
    **_under_properties(
        "Activity",
        "ActivityDateTime",
        "AdditionalInfo",
        "AppId",
        "DetectedDateTime",
        "DetectionTimingType",
        "Id",
        "IpAddress",
        "LastUpdatedDateTime",
        "RequestId",
        "RiskDetail",
        "RiskEventType",
        "RiskLevel",
        "RiskState",
        "RiskType",
        "ServicePrincipalDisplayName",
        "ServicePrincipalId",
        "Source",
        "TokenIssuerType",
        "UserDisplayName",
        "UserId",
        "UserPrincipalName",
    ),
    "Location": "properties.location",
}

# MicrosoftGraphActivityLogs columns, under ``properties`` in lower camel case.
_GRAPH: dict[str, str | tuple[str, ...]] = _under_properties(
    "AppId",
    "IPAddress",
    "RequestMethod",
    "RequestUri",
    "ResponseStatusCode",
    "Roles",
    "Scopes",
    "ServicePrincipalId",
    "UserAgent",
    "UserId",
)

# The Kubernetes audit event's top-level keys (audit.k8s.io/v1 Event), which AKS records carry as
# JSON text in ``properties.log``: ``objectRef.resource`` reads properties.log.objectRef.resource.
KUBE_LOG = f"{PROPERTIES}.log"
_KUBE: dict[str, str | tuple[str, ...]] = {
    key: f"{KUBE_LOG}.{key}"
    for key in (
        "annotations",
        "auditID",
        "impersonatedUser",
        "level",
        "objectRef",
        "requestObject",
        "requestReceivedTimestamp",
        "requestURI",
        "responseObject",
        "responseStatus",
        "sourceIPs",
        "stage",
        "user",
        "userAgent",
        "verb",
    )
}

# AzureActivity columns; ``properties`` of Activity Log records are defined by each resource
# provider, so any properties.* path is accepted there.
_ACTIVITY: dict[str, str | tuple[str, ...]] = {
    "CategoryValue": "category",
    "OperationNameValue": "operationName",
    "ResourceProvider": "hubsight:resource_provider",
    "ResourceProviderValue": "hubsight:resource_provider",
    "ActivityStatus": "resultType",
    "ActivityStatusValue": "resultType",
    "ActivitySubstatus": "properties.statusCode",
    "ActivitySubstatusValue": "properties.statusCode",
    "Caller": "hubsight:user",
    "Authorization": "identity.authorization",
    "Authorization_d": "identity.authorization",
    "Claims": "identity.claims",
    "Claims_d": "identity.claims",
    "Properties_d": "properties",
    "EventSubmissionTimestamp": "time",
}


def _lower(table: Mapping[str, str | tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return {
        name.lower(): (paths,) if isinstance(paths, str) else paths for name, paths in table.items()
    }


@dataclass(frozen=True, slots=True)
class Service:
    """One ``azure`` logsource service: its records and where its fields are in them."""

    name: str
    records: str
    columns_hint: str
    categories: frozenset[str]
    log_sets: frozenset[LogSet]
    columns: Mapping[str, tuple[str, ...]]
    any_property: bool = False
    # Log sets whose events carry the record's ``operationName`` as their ``operation``, so that
    # a rule naming operations is handed only those (Defender's "Security" records do not).
    operation_log_sets: frozenset[LogSet] = frozenset()
    # The record paths that hold the event's ``operation`` (its operationName, and for Entra
    # audit records the activity, which the parser takes as the operation).
    operation_paths: frozenset[str] = frozenset({"operationName"})
    # The record paths that hold a sign-in's error code (the event's ``error_code``).
    code_paths: frozenset[str] = frozenset()
    # Fields rules name that no exported record has, with why (lower-cased name -> sentence).
    absent: Mapping[str, str] = field(default_factory=dict)
    property_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names = {
            path.split(".")[1].lower()
            for paths in self.columns.values()
            for path in paths
            if path.startswith(f"{PROPERTIES}.")
        }
        object.__setattr__(self, "property_names", frozenset(names))

    def paths(self, sigma_field: str) -> tuple[str, ...] | None:
        """The record paths ``sigma_field`` reads (None: the records have no such field)."""
        key = sigma_field.lower()
        known = self.columns.get(key)
        if known is not None:
            return known
        head, _, rest = sigma_field.partition(".")
        if not rest:
            return None
        if head.lower() == PROPERTIES:
            inner = rest.partition(".")[0].lower()
            return (sigma_field,) if self.any_property or inner in self.property_names else None
        base = self.columns.get(head.lower())
        if base is None or any(p.startswith(VIRTUAL_PREFIX) for p in base):
            return None
        return tuple(f"{path}.{rest}" for path in base)


def _categories(*names: str) -> frozenset[str]:
    return frozenset(name.lower() for name in names)


_ENTRA_AUDIT = _categories(AUDIT_CATEGORY)
_AUDIT_OPERATION = frozenset({"operationName", "properties.activityDisplayName"})

SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service(
            name="signinlogs",
            records="Entra ID sign-in records",
            columns_hint="a SigninLogs column such as ResultType or a path such as "
            "properties.deviceDetail",
            categories=_categories(*SIGNIN_CATEGORIES),
            log_sets=frozenset(kind[0] for kind in SIGNIN_CATEGORIES.values()),
            columns=_lower({**_COMMON, **_SIGNIN}),
            code_paths=frozenset({"resultType", "properties.status.errorCode"}),
        ),
        Service(
            name="auditlogs",
            records="Entra ID audit records",
            columns_hint="an AuditLogs column such as OperationName or TargetResources",
            categories=_ENTRA_AUDIT,
            log_sets=frozenset({LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY}),
            columns=_lower({**_COMMON, **_AUDIT}),
            operation_log_sets=frozenset({LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY}),
            operation_paths=_AUDIT_OPERATION,
        ),
        Service(
            name="pim",
            records="Entra ID audit records logged by Privileged Identity Management",
            columns_hint="an AuditLogs column such as OperationName or TargetResources",
            categories=_ENTRA_AUDIT,
            log_sets=frozenset({LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY}),
            columns=_lower({**_COMMON, **_AUDIT}),
            operation_log_sets=frozenset({LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY}),
            operation_paths=_AUDIT_OPERATION,
            absent={
                "riskeventtype": "PIM's security alerts (riskEventType) live in Privileged "
                "Identity Management and Microsoft Graph only: diagnostic settings export "
                "PIM's activity as audit records, never its alerts, so no Event Hub record "
                "carries them",
            },
        ),
        Service(
            name="activitylogs",
            records="Azure Activity Log records",
            columns_hint="an AzureActivity column such as OperationNameValue or a path such "
            "as properties.statusCode",
            categories=_categories(*ADMIN_CATEGORIES, *SERVICE_CATEGORIES, "Security"),
            log_sets=frozenset(
                {
                    LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY,
                    LogSet.CLOUD_SERVICE_ACTIVITY,
                    LogSet.THIRD_PARTY_ALERTS,
                }
            ),
            columns=_lower({**_COMMON, **_ACTIVITY}),
            any_property=True,
            operation_log_sets=frozenset(
                {LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, LogSet.CLOUD_SERVICE_ACTIVITY}
            ),
        ),
        Service(
            name="riskdetection",
            records="Entra ID Protection risk detections",
            columns_hint="an AADUserRiskEvents column such as RiskEventType",
            categories=_categories(*DETECTION_CATEGORIES),
            log_sets=frozenset({LogSet.THIRD_PARTY_ALERTS}),
            columns=_lower({**_COMMON, **_RISK}),
        ),
        # Resource data planes (no SigmaHQ service names these; hubsight's content uses them).
        Service(
            name="keyvault",
            records="Key Vault AuditEvent resource logs",
            columns_hint="a record key such as operationName or a path such as properties.id",
            categories=_categories(KEY_VAULT_CATEGORY),
            log_sets=frozenset({LogSet.CLOUD_SERVICE_ACTIVITY}),
            columns=_lower(_COMMON),
            any_property=True,
            operation_log_sets=frozenset({LogSet.CLOUD_SERVICE_ACTIVITY}),
        ),
        Service(
            name="graphactivitylogs",
            records="Microsoft Graph activity logs",
            columns_hint="a MicrosoftGraphActivityLogs column such as RequestUri or a path such "
            "as properties.requestMethod",
            categories=_categories(GRAPH_CATEGORY),
            log_sets=frozenset({LogSet.CLOUD_SERVICE_ACTIVITY}),
            columns=_lower({**_COMMON, **_GRAPH}),
            any_property=True,
        ),
        Service(
            name="kubeaudit",
            records="AKS API-server audit records (kube-audit, kube-audit-admin)",
            columns_hint="a Kubernetes audit event key such as verb or objectRef.resource, or a "
            "path such as properties.log.user.username",
            categories=_categories(*KUBE_CATEGORIES),
            log_sets=frozenset({LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY}),
            # The event's own "level" (Metadata, Request...) shadows the record's, which is unused.
            columns=_lower({**_COMMON, **_KUBE}),
            any_property=True,
        ),
    )
}
