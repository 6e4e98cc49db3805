"""Entra ID directory records: AuditLogs, ProvisioningLogs, RiskyUsers, UserRiskEvents, and the
Microsoft Graph activity log, as Event Hubs delivers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from hubsight.simulate.draft import Context, Draft, Record, iso7, iso_offset, later
from hubsight.simulate.geo import City, location
from hubsight.simulate.tenant import ServicePrincipal, User, new_id

# Directory role template ids are the same in every tenant.
ROLE_TEMPLATES = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Message Center Reader": "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",
    "Reports Reader": "4a5d8f65-41da-4de4-8968-e035b65339cf",
}


@dataclass(frozen=True, slots=True)
class Audit:
    """One directory change: who did what to which object."""

    activity: str
    category: str
    service: str
    operation_type: str
    target: Record
    actor: User | None = None
    actor_app: ServicePrincipal | None = None
    actor_ip: str = ""
    result: str = "success"
    # Further objects the change touched (the member of a group membership change).
    also: tuple[Record, ...] = ()


def quoted(value: object) -> str:
    """A modified property value the way Entra writes it: JSON inside a string."""
    return json.dumps(value)


def changed(name: str, old: object, new: object) -> Record:
    """One ``modifiedProperties`` entry."""
    return {
        "displayName": name,
        "oldValue": None if old is None else quoted(old),
        "newValue": None if new is None else quoted(new),
    }


def user_target(user: User, modified: list[Record]) -> Record:
    """A ``targetResources`` entry for a user."""
    return {
        "id": user.object_id,
        "displayName": None,
        "type": "User",
        "userPrincipalName": user.upn,
        "modifiedProperties": modified,
        "administrativeUnits": [],
    }


def group_target(name: str, group_id: str) -> Record:
    """A ``targetResources`` entry for a group."""
    return {
        "id": group_id,
        "displayName": name,
        "type": "Group",
        "groupType": "unifiedGroups",
        "modifiedProperties": [],
        "administrativeUnits": [],
    }


def app_target(app: ServicePrincipal, modified: list[Record]) -> Record:
    """A ``targetResources`` entry for an application."""
    return {
        "id": app.object_id,
        "displayName": app.name,
        "type": "Application",
        "modifiedProperties": modified,
        "administrativeUnits": [],
    }


def audit(ctx: Context, when: datetime, change: Audit) -> Draft:
    """An ``AuditLogs`` record."""
    rng = ctx.rng
    processed = later(when, rng, 30, 300)
    correlation = new_id(rng)
    if change.actor is not None:
        initiated: Record = {
            "user": {
                "id": change.actor.object_id,
                "displayName": None,
                "userPrincipalName": change.actor.upn,
                "ipAddress": change.actor_ip,
                "roles": [],
            }
        }
        identity = change.actor.display_name
    else:
        app = change.actor_app
        initiated = {
            "app": {
                "appId": app.app_id if app else None,
                "displayName": app.name if app else "Microsoft Substrate Management",
                "servicePrincipalId": app.object_id if app else new_id(rng),
                "servicePrincipalName": None,
            }
        }
        identity = app.name if app else "Microsoft Substrate Management"
    record_id = (
        f"Directory_{new_id(rng)}_{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randrange(10**7)}"
    )
    record: Record = {
        "time": iso7(processed),
        "resourceId": f"/tenants/{ctx.tenant.tenant_id}/providers/Microsoft.aadiam",
        "operationName": change.activity,
        "operationVersion": "1.0",
        "category": "AuditLogs",
        "tenantId": ctx.tenant.tenant_id,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": change.actor_ip or "<null>",
        "correlationId": correlation,
        "identity": identity,
        "Level": 4,
        "properties": {
            "id": record_id,
            "category": change.category,
            "correlationId": correlation,
            "result": change.result,
            "resultReason": "",
            "activityDisplayName": change.activity,
            "activityDateTime": iso_offset(when),
            "loggedByService": change.service,
            "operationType": change.operation_type,
            "userAgent": change.actor.devices[0].user_agent if change.actor else None,
            "initiatedBy": initiated,
            "targetResources": [change.target, *change.also],
            "additionalDetails": [
                {"key": "User-Agent", "value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
            ]
            if change.actor
            else [],
        },
    }
    return Draft(when, processed, "AuditLogs", record, record_id)


def provisioning(ctx: Context, when: datetime, user: User, action: str, status: str) -> Draft:
    """A ``ProvisioningLogs`` record: the provisioning service syncing a user to a SaaS app."""
    rng = ctx.rng
    processed = later(when, rng, 60, 600)
    entry_id = new_id(rng)
    target_system = rng.choice(("ServiceNow", "Salesforce", "Workday", "Slack"))
    record: Record = {
        "time": iso7(processed),
        "resourceId": f"/tenants/{ctx.tenant.tenant_id}/providers/Microsoft.aadiam",
        "operationName": "Provisioning activity",
        "operationVersion": "1.0",
        "category": "ProvisioningLogs",
        "tenantId": ctx.tenant.tenant_id,
        "resultType": "Success" if status == "success" else "Failure",
        "resultSignature": "None",
        "durationMs": rng.randrange(80, 3000),
        "callerIpAddress": "",
        "correlationId": new_id(rng),
        "identity": "Azure AD Provisioning Service",
        "Level": 4,
        "location": "",
        "properties": {
            "id": entry_id,
            "activityDateTime": iso_offset(when),
            "tenantId": ctx.tenant.tenant_id,
            "jobId": f"{target_system}OutDelta.{new_id(rng).replace('-', '')}",
            "cycleId": new_id(rng),
            "changeId": new_id(rng),
            "provisioningAction": action,
            "durationInMilliseconds": rng.randrange(80, 3000),
            "provisioningStatusInfo": {
                "status": status,
                "errorInformation": None
                if status == "success"
                else {"errorCode": "SalesforceDuplicateUsername", "reason": "Duplicate username"},
            },
            "provisioningSteps": [
                {
                    "name": "EntryImportAdd",
                    "provisioningStepType": "import",
                    "status": "success",
                    "description": f"Received User '{user.upn}' change of type (Add) from "
                    "Azure Active Directory",
                    "details": {},
                },
                {
                    "name": "EntryExportAdd",
                    "provisioningStepType": "export",
                    "status": status,
                    "description": f"User '{user.upn}' was {action}d in {target_system}",
                    "details": {},
                },
            ],
            "servicePrincipal": {"id": new_id(rng), "displayName": target_system},
            "sourceSystem": {
                "id": new_id(rng),
                "displayName": "Azure Active Directory",
                "details": {},
            },
            "targetSystem": {"id": new_id(rng), "displayName": target_system, "details": {}},
            "sourceIdentity": {
                "id": user.object_id,
                "displayName": user.display_name,
                "identityType": "User",
                "details": {},
            },
            "targetIdentity": {
                "id": "",
                "displayName": user.upn,
                "identityType": "User",
                "details": {},
            },
            "initiatedBy": {
                "id": "",
                "displayName": "Azure AD Provisioning Service",
                "initiatorType": "system",
            },
            "modifiedProperties": [
                {"displayName": "accountEnabled", "oldValue": None, "newValue": "True"},
                {"displayName": "userPrincipalName", "oldValue": None, "newValue": user.upn},
            ],
        },
    }
    return Draft(when, processed, "ProvisioningLogs", record, entry_id)


def risky_user(ctx: Context, when: datetime, user: User, level: str) -> Draft:
    """A ``RiskyUsers`` record: ID Protection's current risk for a user."""
    processed = later(when, ctx.rng, 60, 900)
    record: Record = {
        "time": iso7(processed),
        "resourceId": f"/tenants/{ctx.tenant.tenant_id}/providers/Microsoft.aadiam",
        "operationName": "Risky user",
        "operationVersion": "1.0",
        "category": "RiskyUsers",
        "tenantId": ctx.tenant.tenant_id,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": "",
        "correlationId": new_id(ctx.rng),
        "Level": 4,
        "properties": {
            "id": user.object_id,
            "isDeleted": False,
            "isProcessing": False,
            "riskDetail": "none",
            "riskLastUpdatedDateTime": iso_offset(when),
            "riskLevel": level,
            "riskState": "atRisk",
            "userDisplayName": user.display_name,
            "userPrincipalName": user.upn,
        },
    }
    return Draft(when, processed, "RiskyUsers", record, f"{user.object_id}@{record['time']}")


def risk_detection(
    ctx: Context,
    when: datetime,
    user: User,
    kind: str,
    level: str,
    ip: str,
    city: City,
    sign_in: Draft | None = None,
) -> Draft:
    """A ``UserRiskEvents`` record: one ID Protection risk detection for a sign-in (the record of
    ``sign_in`` when there is one: the detection names its ``id`` and ``correlationId``)."""
    rng = ctx.rng
    if sign_in is not None:
        request_id, correlation = sign_in.key, sign_in.record["correlationId"]
    else:
        request_id, correlation = new_id(rng), new_id(rng)
    processed = later(when, rng, 120, 1800)
    detection_id = new_id(rng).replace("-", "")
    record: Record = {
        "time": iso7(processed),
        "resourceId": f"/tenants/{ctx.tenant.tenant_id}/providers/Microsoft.aadiam",
        "operationName": "User Risk Detection",
        "operationVersion": "1.0",
        "category": "UserRiskEvents",
        "tenantId": ctx.tenant.tenant_id,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": correlation,
        "Level": 4,
        "properties": {
            "id": detection_id,
            "requestId": request_id,
            "correlationId": correlation,
            "riskEventType": kind,
            "riskState": "atRisk",
            "riskLevel": level,
            "riskDetail": "none",
            "source": "IdentityProtection",
            "detectionTimingType": "realtime" if kind == "unfamiliarFeatures" else "offline",
            "activity": "signin",
            "ipAddress": ip,
            "location": location(city),
            "activityDateTime": iso_offset(when),
            "detectedDateTime": iso_offset(when),
            "lastUpdatedDateTime": iso_offset(processed),
            "userId": user.object_id,
            "userDisplayName": user.display_name,
            "userPrincipalName": user.upn,
            "additionalInfo": json.dumps(
                [{"Key": "userAgent", "Value": user.devices[0].user_agent}]
            ),
            "tokenIssuerType": "AzureAD",
        },
    }
    return Draft(when, processed, "UserRiskEvents", record, detection_id)


_GRAPH_CALLS = (
    ("GET", "https://graph.microsoft.com/v1.0/me", 200),
    ("GET", "https://graph.microsoft.com/v1.0/me/messages?$top=25", 200),
    ("GET", "https://graph.microsoft.com/v1.0/users?$select=id,displayName", 200),
    ("GET", "https://graph.microsoft.com/beta/groups?$top=999", 200),
    ("POST", "https://graph.microsoft.com/v1.0/$batch", 200),
    ("GET", "https://graph.microsoft.com/v1.0/sites/root", 403),
)


def graph_activity(ctx: Context, when: datetime, user: User, ip: str) -> Draft:
    """A ``MicrosoftGraphActivityLogs`` record: one Graph API request."""
    rng = ctx.rng
    processed = later(when, rng, 60, 300)
    method, uri, status = rng.choice(_GRAPH_CALLS)
    request_id = new_id(rng)
    record: Record = {
        "time": iso7(processed),
        "resourceId": f"/tenants/{ctx.tenant.tenant_id}/providers/Microsoft.aadiam",
        "operationName": "Microsoft Graph Activity",
        "operationVersion": "beta",
        "category": "MicrosoftGraphActivityLogs",
        "resultSignature": str(status),
        "durationMs": str(rng.randrange(20, 900)),
        "callerIpAddress": ip,
        "correlationId": request_id,
        "level": "Informational",
        "location": ctx.tenant.headquarters.country,
        "properties": {
            "timeGenerated": iso7(when),
            "location": "West Europe",
            "requestId": request_id,
            "operationId": new_id(rng),
            "clientRequestId": new_id(rng),
            "apiVersion": "beta" if "/beta/" in uri else "v1.0",
            "requestMethod": method,
            "responseStatusCode": status,
            "tenantId": ctx.tenant.tenant_id,
            "durationMs": rng.randrange(20, 900),
            "responseSizeBytes": rng.randrange(200, 60000),
            "signInActivityId": new_id(rng).replace("-", "")[:22],
            "ipAddress": ip,
            "userAgent": user.devices[0].user_agent,
            "requestUri": uri,
            "appId": "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
            "servicePrincipalId": "",
            "userId": user.object_id,
            "scopes": "Mail.Read User.Read Sites.Read.All",
            "roles": "",
            "tokenIssuedAt": iso7(later(when, rng, -3000, -60)),
            "identityProvider": f"https://sts.windows.net/{ctx.tenant.tenant_id}/",
            "clientAuthMethod": "0",
            "wids": "b79fbf4d-3ef9-4689-8143-76b194e85509",
        },
    }
    return Draft(when, processed, "MicrosoftGraphActivityLogs", record, request_id)
