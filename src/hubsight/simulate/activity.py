"""Azure Activity Log records (every category) in the resource-log shape that diagnostic settings
stream to Event Hubs, plus Key Vault's ``AuditEvent`` resource log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from hubsight.simulate.draft import Context, Draft, Record, iso7, later
from hubsight.simulate.tenant import AzureResource, ServicePrincipal, User, new_id

_ROLE_DEFINITIONS = {
    "Owner": "8e3af657a8ff443ca75c2fe8c4bcb635",
    "Contributor": "b24988ac618042a0ab8820f7382dd24c",
    "Virtual Machine Contributor": "9980e02c8ad8441ea8cf8f31b9abc6c2",
}
_POLICY_INSIGHTS_APP = "1d78a85d-813d-46f0-b496-dd72f50a3ec0"
_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_NAMEID = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"
_TID = "http://schemas.microsoft.com/identity/claims/tenantid"


@dataclass(frozen=True, slots=True)
class Operation:
    """One Azure Resource Manager operation and who performed it."""

    action: str
    scope: str
    caller: User | ServicePrincipal | None
    ip: str
    role: str = "Contributor"
    status_code: str = "OK"
    failed: bool = False
    extra: Record = field(default_factory=dict)


def _claims(ctx: Context, when: datetime, caller: User | ServicePrincipal, ip: str) -> Record:
    issued = int(when.timestamp()) - ctx.rng.randrange(60, 3000)
    tenant = ctx.tenant
    claims: Record = {
        "aud": "https://management.core.windows.net/",
        "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
        "iat": str(issued),
        "nbf": str(issued),
        "exp": str(issued + 4500),
    }
    if isinstance(caller, User):
        first, _, last = caller.display_name.partition(" ")
        claims.update(
            {
                "http://schemas.microsoft.com/claims/authnclassreference": "1",
                "aio": new_id(ctx.rng).replace("-", "") + "8VAAAA",
                "http://schemas.microsoft.com/claims/authnmethodsreferences": "pwd,mfa",
                "appid": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
                "appidacr": "0",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": last,
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": first,
                "idtyp": "user",
                "ipaddr": ip,
                "name": caller.display_name,
                "http://schemas.microsoft.com/identity/claims/objectidentifier": caller.object_id,
                "puid": f"1003200{ctx.rng.randrange(16**9):09X}",
                "rh": "0.AVYA" + new_id(ctx.rng).replace("-", "")[:40] + ".",
                "http://schemas.microsoft.com/identity/claims/scope": "user_impersonation",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": new_id(
                    ctx.rng
                ).replace("-", ""),
                "http://schemas.microsoft.com/identity/claims/tenantid": tenant.tenant_id,
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": caller.upn,
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": caller.upn,
                "uti": new_id(ctx.rng).replace("-", "")[:22],
                "ver": "1.0",
                "xms_cae": "1",
            }
        )
    else:
        claims.update(
            {
                "aio": new_id(ctx.rng).replace("-", "") + "AAAA=",
                "appid": caller.app_id,
                "appidacr": "1",
                "http://schemas.microsoft.com/identity/claims/identityprovider": claims["iss"],
                "idtyp": "app",
                _OID: caller.object_id,
                _NAMEID: caller.object_id,
                _TID: tenant.tenant_id,
                "uti": new_id(ctx.rng).replace("-", "")[:22],
                "ver": "1.0",
            }
        )
    return claims


def _base(ctx: Context, when: datetime, category: str, operation: str, resource_id: str) -> Record:
    return {
        "RoleLocation": "West Europe",
        "ReleaseVersion": "6.2026.44.3+1d2c8e4.release_2026w44",
        "time": iso7(when),
        "resourceId": resource_id.upper(),
        "operationName": operation.upper(),
        "category": category,
    }


# Operations Azure Resource Manager runs asynchronously: the request is answered 202 Accepted
# and the operation ends minutes later, so the Activity Log holds a third record between its
# start and its end ("Accept"), and the end is not an HTTP answer (no status code).
_LONG_RUNNING = frozenset(
    action.lower()
    for action in (
        "Microsoft.Compute/virtualMachines/write",
        "Microsoft.Compute/virtualMachines/delete",
        "Microsoft.Compute/virtualMachines/start/action",
        "Microsoft.Compute/virtualMachines/deallocate/action",
        "Microsoft.Compute/virtualMachines/runCommand/action",
        "Microsoft.Compute/snapshots/delete",
        "Microsoft.Compute/disks/beginGetAccess/action",
        "Microsoft.ContainerService/managedClusters/runCommand/action",
        "Microsoft.Resources/subscriptions/resourceGroups/delete",
        "Microsoft.Sql/servers/databases/write",
        "Microsoft.Storage/storageAccounts/write",
        "Microsoft.OperationalInsights/workspaces/delete",
    )
)


def _phases(
    when: datetime, op: Operation, ctx: Context
) -> list[tuple[datetime, str, str, str | None]]:
    """When ARM writes each of an operation's records, its result, signature and status code."""
    rng = ctx.rng
    if op.failed or op.action.lower() not in _LONG_RUNNING:
        # Synchronous, or refused at the request (a 403 is answered before anything starts).
        end = later(when, rng, 0.3, 20)
        result = "Failure" if op.failed else "Success"
        signature = f"{'Failed' if op.failed else 'Succeeded'}.{op.status_code}"
        return [(when, "Start", "Started.", None), (end, result, signature, op.status_code)]
    accepted = later(when, rng, 0.2, 3)
    return [
        (when, "Start", "Started.", None),
        (accepted, "Accept", "Accepted.Accepted", "Accepted"),
        (later(accepted, rng, 20, 300), "Success", "Succeeded.", None),
    ]


def administrative(ctx: Context, when: datetime, op: Operation) -> list[Draft]:
    """The ``Administrative`` records ARM writes for one operation: its start, its acceptance
    when it runs asynchronously, and its end."""
    rng = ctx.rng
    correlation = new_id(rng)
    sub = op.scope.split("/")[2]
    identity: Record = {}
    if op.caller is not None:
        principal = op.caller.object_id.replace("-", "")
        identity = {
            "authorization": {
                "scope": op.scope,
                "action": op.action,
                "evidence": {
                    "role": op.role,
                    "roleAssignmentScope": f"/subscriptions/{sub}",
                    "roleAssignmentId": new_id(rng).replace("-", ""),
                    "roleDefinitionId": _ROLE_DEFINITIONS.get(op.role, _ROLE_DEFINITIONS["Owner"]),
                    "principalId": principal,
                    "principalType": "User" if isinstance(op.caller, User) else "ServicePrincipal",
                },
            },
            "claims": _claims(ctx, when, op.caller, op.ip),
        }
    drafts = []
    for moment, result, signature, status_code in _phases(when, op, ctx):
        record = _base(ctx, moment, "Administrative", op.action, op.scope)
        properties: Record = {}
        if status_code is not None:
            properties["statusCode"] = status_code
            properties["serviceRequestId"] = new_id(rng)
        elif result == "Start":
            properties["requestbody"] = json.dumps(op.extra) if op.extra else ""
        properties.update(
            {
                "eventCategory": "Administrative",
                "entity": op.scope,
                "message": op.action,
                "hierarchy": f"{ctx.tenant.hierarchy}/{sub}",
            }
        )
        record.update(
            {
                "resultType": result,
                "resultSignature": signature,
                "durationMs": "0",
                "callerIpAddress": op.ip,
                "correlationId": correlation,
                "identity": identity,
                "level": "Error" if result == "Failure" else "Information",
                "properties": properties,
                "tenantId": ctx.tenant.tenant_id,
            }
        )
        drafts.append(Draft(moment, moment, "Administrative", record, f"{correlation}/{result}"))
    return drafts


def policy(ctx: Context, when: datetime, resource: AzureResource, effect: str) -> Draft:
    """A ``Policy`` record: Azure Policy auditing (or denying) a resource."""
    rng = ctx.rng
    correlation = new_id(rng)
    definition = new_id(rng)
    assignment = new_id(rng).replace("-", "")[:24]
    sub = resource.subscription_id
    record = _base(
        ctx,
        when,
        "Policy",
        f"Microsoft.Authorization/policies/{effect}/action",
        resource.resource_id,
    )
    policies = [
        {
            "policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/"
            f"{definition}/",
            "policyDefinitionName": definition,
            "policyDefinitionEffect": effect.capitalize(),
            "policyAssignmentId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
            f"policyAssignments/{assignment}/",
            "policyAssignmentName": assignment,
            "policyAssignmentScope": f"/subscriptions/{sub}",
            "policyAssignmentParameters": {},
        }
    ]
    record.update(
        {
            "resultType": "Success" if effect != "deny" else "Failure",
            "resultSignature": "Succeeded." if effect != "deny" else "Failed.",
            "durationMs": "0",
            "callerIpAddress": "",
            "correlationId": correlation,
            "identity": {
                "authorization": {
                    "scope": resource.resource_id,
                    "action": "Microsoft.Resources/checkPolicyCompliance/read",
                },
                "claims": {
                    "aud": "https://management.azure.com/",
                    "iss": f"https://sts.windows.net/{ctx.tenant.tenant_id}/",
                    "appid": _POLICY_INSIGHTS_APP,
                    "appidacr": "2",
                    "http://schemas.microsoft.com/identity/claims/tenantid": ctx.tenant.tenant_id,
                },
            },
            "level": "Warning"
            if effect == "audit"
            else "Error"
            if effect == "deny"
            else "Information",
            "properties": {
                "isComplianceCheck": "True",
                "resourceLocation": resource.region,
                "ancestors": ctx.tenant.hierarchy.split("/")[-1],
                "policies": json.dumps(policies),
                "eventCategory": "Policy",
                "entity": resource.resource_id,
                "message": f"Microsoft.Authorization/policies/{effect}/action",
                "hierarchy": f"{ctx.tenant.hierarchy}/{sub}",
            },
            "tenantId": ctx.tenant.tenant_id,
        }
    )
    return Draft(when, when, "Policy", record, correlation)


def platform_event(
    ctx: Context,
    when: datetime,
    category: str,
    operation: str,
    resource_id: str,
    result: str,
    level: str,
    properties: Record,
) -> Draft:
    """A ``ServiceHealth``, ``ResourceHealth``, ``Alert``, ``Autoscale``, ``Recommendation`` or
    ``Security`` record: Azure itself reporting, no user behind it."""
    correlation = new_id(ctx.rng)
    record = _base(ctx, when, category, operation, resource_id)
    record.update(
        {
            "resultType": result,
            "resultSignature": "",
            "durationMs": "0",
            "callerIpAddress": "",
            "correlationId": correlation,
            "identity": {},
            "level": level,
            "properties": {**properties, "eventCategory": category},
            "tenantId": ctx.tenant.tenant_id,
        }
    )
    return Draft(when, when, category, record, correlation)


@dataclass(frozen=True, slots=True)
class DefenderAlert:
    """A Microsoft Defender for Cloud alert."""

    alert_type: str
    name: str
    description: str
    severity: str
    intent: str
    resource: AzureResource
    ip: str | None = None
    user: User | None = None
    remediation: tuple[str, ...] = ("Investigate the activity and contact the owner.",)


def defender_export(ctx: Context, when: datetime, alert: DefenderAlert) -> Draft:
    """A Defender continuous-export ``SecurityAlert`` object (PascalCase, no Azure Monitor
    envelope, entities linked by ``$id``/``$ref``)."""
    rng = ctx.rng
    system_id = f"{rng.randrange(2**63):019d}_{new_id(rng)}"
    processed = later(when, rng, 60, 900)
    resource_id = alert.resource.resource_id
    entities: list[Record] = [
        {"$id": "4", "ResourceId": resource_id, "Type": "azure-resource"},
    ]
    if alert.ip:
        entities.append({"$id": "5", "Address": alert.ip, "Type": "ip"})
    if alert.user:
        local, _, domain = alert.user.upn.partition("@")
        entities.append(
            {
                "$id": "6",
                "Name": local,
                "UPNSuffix": domain,
                "AadUserId": alert.user.object_id,
                "Type": "account",
            }
        )
    if alert.ip and alert.user:
        entities.append(
            {
                "$id": "7",
                "SourceAddress": {"$ref": "5"},
                "Account": {"$ref": "6"},
                "Resource": {"$ref": "4"},
                "Type": "network-connection",
            }
        )
    record: Record = {
        "VendorName": "Microsoft",
        "AlertType": alert.alert_type,
        "ProductName": "Azure Security Center",
        "StartTimeUtc": iso7(when),
        "EndTimeUtc": iso7(later(when, rng, 1, 300)),
        "TimeGenerated": iso7(processed),
        "ProcessingEndTime": iso7(processed),
        "Severity": alert.severity,
        "Status": "New",
        "ProviderAlertStatus": None,
        "ConfidenceLevel": None,
        "ConfidenceScore": None,
        "IsIncident": False,
        "SystemAlertId": system_id,
        "CorrelationKey": new_id(rng).replace("-", ""),
        "Intent": alert.intent,
        "AzureResourceId": resource_id,
        "WorkspaceId": None,
        "CompromisedEntity": alert.resource.name,
        "AlertDisplayName": alert.name,
        "Description": alert.description,
        "Entities": entities,
        "ExtendedLinks": [],
        "RemediationSteps": list(alert.remediation),
        "ExtendedProperties": {
            "Client IP address": alert.ip or "",
            "Client principal name": alert.user.upn if alert.user else "",
            "resourceType": alert.resource.provider + "/" + alert.resource.kind,
            "Investigation steps": "Review the resource's activity around the alert time.",
        },
        "ResourceIdentifiers": [
            {
                "$id": "2",
                "AzureResourceId": resource_id,
                "Type": "AzureResource",
                "AzureResourceTenantId": ctx.tenant.tenant_id,
            },
            {"$id": "3", "AadTenantId": ctx.tenant.tenant_id, "Type": "AAD"},
        ],
        "AlertUri": "https://portal.azure.com/#blade/Microsoft_Azure_Security_AzureDefenderForData/"
        f"AlertBlade/alertId/{system_id}/subscriptionId/{alert.resource.subscription_id}/"
        f"resourceGroup/{alert.resource.resource_group}/referencedFrom/alertDeepLink/location/"
        f"{alert.resource.region}",
        "Techniques": [],
        "SubTechniques": [],
    }
    return Draft(when, processed, "SecurityAlert", record, system_id)


def defender_activity(ctx: Context, when: datetime, alert: DefenderAlert) -> Draft:
    """The Activity Log ``Security`` record Defender writes for the same alert."""
    sub = alert.resource.subscription_id
    alert_id = f"{ctx.rng.randrange(2**63):019d}_{new_id(ctx.rng)}"
    return platform_event(
        ctx,
        when,
        "Security",
        "Microsoft.Security/locations/alerts/activate/action",
        f"/subscriptions/{sub}/resourceGroups/{alert.resource.resource_group}/providers/"
        f"Microsoft.Security/locations/{alert.resource.region}/alerts/{alert_id}",
        "Active",
        "Informational",
        {
            "eventName": alert.name,
            "operationId": new_id(ctx.rng),
            "AlertType": alert.alert_type,
            "Severity": alert.severity,
            "ActionTaken": "Detected",
            "CompromisedEntity": alert.resource.name,
            "Description": alert.description,
            "ClientIPAddress": alert.ip or "",
            "UserName": alert.user.upn if alert.user else "",
        },
    )


def key_vault_audit(
    ctx: Context, when: datetime, vault: AzureResource, caller: ServicePrincipal, ip: str
) -> Draft:
    """A Key Vault ``AuditEvent`` resource log: a workload reading a secret or using a key."""
    rng = ctx.rng
    correlation = new_id(rng)
    operation = rng.choice(("SecretGet", "SecretList", "KeySign", "VaultGet"))
    record: Record = {
        "time": iso7(when),
        "category": "AuditEvent",
        "operationName": operation,
        "resultType": "Success",
        "correlationId": correlation,
        "callerIpAddress": ip,
        "identity": {
            "claim": {
                "oid": caller.object_id,
                "appid": caller.app_id,
                "appidacr": "2",
                "xms_mirid": caller.msi_resource_id,
            }
        },
        "properties": {
            "id": f"https://{vault.name}.vault.azure.net/secrets/orders-db-password",
            "clientInfo": "azsdk-python-keyvault-secrets/4.8.0 Python/3.11.9",
            "httpStatusCode": 200,
            "requestUri": f"https://{vault.name}.vault.azure.net/secrets/orders-db-password"
            "?api-version=7.4",
            "isAccessPolicyMatch": True,
            "tlsVersion": "TLS1.2",
        },
        "resourceId": vault.resource_id.upper(),
        "operationVersion": "7.4",
        "resultSignature": "OK",
        "durationMs": str(rng.randrange(3, 60)),
        "location": vault.region,
    }
    return Draft(when, when, "AuditEvent", record, correlation)
