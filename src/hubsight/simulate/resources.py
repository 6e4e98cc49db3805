"""Azure resource logs and Defender continuous export, as diagnostic settings stream them.

Storage data-plane requests, AKS API-server audit, Azure Firewall (legacy and structured
categories) and WAF decisions, SQL auditing, Event Hubs operational logs, and Defender for
Cloud's exported assessments, sub-assessments, secure scores and regulatory compliance. Field
names and values follow Microsoft's documented schemas for each category.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from hubsight.simulate.draft import Context, Draft, Record, iso7
from hubsight.simulate.geo import azure_ip, tor_ip
from hubsight.simulate.tenant import AzureResource, ServicePrincipal, new_id

Builder = Callable[[datetime], list[Draft]]

# Defender continuous export sends objects without a category; the simulator batches them
# under these names (one Event Hub message per kind, as the export does).
POSTURE_KINDS = {
    "DefenderAssessments": "Microsoft.Security/assessments",
    "DefenderSubAssessments": "Microsoft.Security/assessments/subAssessments",
    "DefenderSecureScores": "Microsoft.Security/secureScores",
    "DefenderRegulatoryCompliance": (
        "Microsoft.Security/regulatoryComplianceStandards/regulatoryComplianceControls/"
        "regulatoryComplianceAssessments"
    ),
}
_BLOBS = ("orders/2026/export.csv", "invoices/inv-4471.pdf", "images/logo.png", "backups/db.bak")
# The managed identities (by name) that read and write each storage account (by name prefix).
_STORAGE_WORKLOADS = {
    "stprodorders": ("func-orders-prod", "func-thumbnails", "id-data-pipeline"),
    "stlogarchive": ("id-data-pipeline", "logic-approvals"),
}
_KUBE_RESOURCES = (
    ("pods", "orders"),
    ("deployments", "orders"),
    ("secrets", "orders"),
    ("configmaps", "kube-system"),
    ("leases", "kube-system"),
)
_FQDNS = (
    "api.github.com",
    "pypi.org",
    "login.microsoftonline.com",
    "packages.microsoft.com",
    "registry-1.docker.io",
    "pastebin.com",
)
_ASSESSMENTS = (
    ("Storage accounts should restrict network access", "Medium"),
    ("Machines should have vulnerability findings resolved", "High"),
    ("MFA should be enabled on accounts with owner permissions", "High"),
    ("Diagnostic logs in Key Vault should be enabled", "Low"),
)


def _record(
    resource_id: str, category: str, operation: str, when: datetime, **fields: object
) -> Record:
    record: Record = {
        "time": iso7(when),
        "resourceId": resource_id.upper(),
        "category": category,
        "operationName": operation,
    }
    record.update(fields)
    return record


def _group(subscription: str, group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers"


@dataclass(frozen=True, slots=True)
class StorageRequest:
    """One Storage data-plane request: how it was authorized, from where, and whether it did."""

    category: str
    operation: str
    # identity.type: OAuth, SAS, AccountKey, Anonymous.
    kind: str
    ip: str
    ok: bool = True
    # The Entra caller of an OAuth request.
    caller: ServicePrincipal | None = None
    blob: str | None = None


def storage_request(
    ctx: Context, when: datetime, account: AzureResource, request: StorageRequest
) -> Draft:
    """A ``StorageRead``/``StorageWrite``/``StorageDelete`` resource log record of a blob."""
    rng, tenant = ctx.rng, ctx.tenant
    status, text = (200, "Success") if request.ok else (403, "AuthorizationFailure")
    if request.category == "StorageWrite" and request.ok:
        status = 201
    identity: Record = {"type": request.kind}
    if request.caller is not None:
        identity["requester"] = {
            "appId": request.caller.app_id,
            "objectId": request.caller.object_id,
            "tenantId": tenant.tenant_id,
            "audience": "https://storage.azure.com/",
        }
    blob = request.blob or rng.choice(_BLOBS)
    correlation = new_id(rng)
    record = _record(
        f"{account.resource_id}/blobServices/default",
        request.category,
        request.operation,
        when,
        operationVersion="2023-11-03",
        schemaVersion="1.0",
        statusCode=status,
        statusText=text,
        durationMs=rng.randrange(2, 90),
        callerIpAddress=f"{request.ip}:{rng.randrange(1024, 65535)}",
        correlationId=correlation,
        identity=identity,
        location=account.region,
        properties={
            "accountName": account.name,
            "serviceType": "blob",
            "userAgentHeader": "azsdk-python-storage-blob/12.19.0",
            "objectKey": f"/{account.name}/{blob}",
            "metricResponseType": text,
        },
        uri=f"https://{account.name}.blob.core.windows.net:443/{blob}",
        protocol="HTTPS",
        resourceType="Microsoft.Storage/storageAccounts/blobServices",
    )
    return Draft(when, when, request.category, record, correlation)


def resource_builders(ctx: Context) -> dict[str, Builder]:
    """Background builders of the resource-log and continuous-export categories."""
    rng = ctx.rng
    tenant = ctx.tenant
    sub = tenant.subscriptions[0]
    accounts = tenant.resources_of("storageAccounts")
    vms = tenant.resources_of("virtualMachines")
    sql = tenant.resources_of("servers")[0]
    hubs = tenant.resources_of("namespaces")
    cluster = f"{_group(sub, 'rg-aks')}/Microsoft.ContainerService/managedClusters/aks-prod"
    firewall = f"{_group(sub, 'rg-hub')}/Microsoft.Network/azureFirewalls/afw-hub"
    gateway = f"{_group(sub, 'rg-web')}/Microsoft.Network/applicationGateways/agw-web"
    front_door = f"{_group(sub, 'rg-web')}/Microsoft.Cdn/profiles/afd-web"

    def person_ip() -> str:
        return rng.choice(tenant.users).home.ip(rng)

    # Workloads hold data roles on the accounts they use, and only those: an identity reading
    # an account it never read is news (``graph.new_app_reads_files``), not everyday traffic.
    users_of = {
        account.name: tuple(
            mi
            for mi in tenant.managed_identities
            if mi.name in _STORAGE_WORKLOADS[account.name.rstrip("0123456789")]
        )
        for account in accounts
    }

    def storage(category: str, operations: tuple[str, ...]) -> Builder:
        def build(when: datetime) -> list[Draft]:
            account: AzureResource = rng.choice(accounts)
            kind = rng.choice(("OAuth", "OAuth", "SAS", "AccountKey", "Anonymous"))
            ok = rng.random() < 0.95
            caller = rng.choice(users_of[account.name]) if kind == "OAuth" else None
            # SAS tokens are handed to the tenant's own workloads: they use them from the
            # addresses those sign in from (the tenant's addresses), not from anywhere.
            workload = rng.choice(tenant.service_principals)
            ip = rng.choice(workload.addresses) if kind == "SAS" else azure_ip(rng)
            request = StorageRequest(category, rng.choice(operations), kind, ip, ok, caller)
            return [storage_request(ctx, when, account, request)]

        return build

    def kube_audit(category: str) -> Builder:
        def build(when: datetime) -> list[Draft]:
            resource, namespace = rng.choice(_KUBE_RESOURCES)
            verb = rng.choice(("get", "list", "watch", "update", "create", "delete"))
            if category == "kube-audit-admin" and verb in ("get", "list", "watch"):
                verb = "update"  # the admin category leaves out reads
            user = rng.choice(
                (
                    "system:serviceaccount:orders:orders-api",
                    "masterclient",
                    rng.choice(tenant.users).upn,
                )
            )
            code = 200 if rng.random() < 0.97 else 403
            event = {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": new_id(rng),
                "stage": "ResponseComplete",
                "requestURI": f"/api/v1/namespaces/{namespace}/{resource}",
                "verb": verb,
                "user": {"username": user, "groups": ["system:authenticated"]},
                "sourceIPs": [person_ip() if "@" in user else "10.224.0.4"],
                "userAgent": "kubectl/v1.30.4 (linux/amd64) kubernetes/6e5a1e6",
                "objectRef": {
                    "resource": resource,
                    "namespace": namespace,
                    "name": f"{namespace}-{rng.randrange(1, 9)}",
                    "apiVersion": "v1",
                },
                "responseStatus": {"metadata": {}, "code": code},
                "requestReceivedTimestamp": iso7(when),
                "stageTimestamp": iso7(when),
            }
            operation = "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read"
            record = _record(
                cluster,
                category,
                operation,
                when,
                properties={
                    "log": json.dumps(event),
                    "stream": "stdout",
                    "pod": "kube-apiserver-6b9f8c7d5-x2k4p",
                },
            )
            return [Draft(when, when, category, record, new_id(rng))]

        return build

    def firewall_legacy(category: str) -> Builder:
        def build(when: datetime) -> list[Draft]:
            source = f"10.1.{rng.randrange(0, 4)}.{rng.randrange(4, 250)}"
            if category == "AzureFirewallNetworkRule":
                action = "Allow" if rng.random() < 0.9 else "Deny"
                message = (
                    f"TCP request from {source}:{rng.randrange(1024, 65535)} to "
                    f"{azure_ip(rng)}:443. Action: {action}"
                )
            else:
                action = "Allow" if rng.random() < 0.9 else "Deny"
                fqdn = rng.choice(_FQDNS)
                message = (
                    f"HTTPS request from {source}:{rng.randrange(1024, 65535)} to {fqdn}:443. "
                    f"Action: {action}. Rule Collection: rc-egress. Rule: allow-dev-tools"
                )
            record = _record(
                firewall, category, f"{category}Log", when, properties={"msg": message}
            )
            return [Draft(when, when, category, record, new_id(rng))]

        return build

    def firewall_structured(category: str) -> Builder:
        def build(when: datetime) -> list[Draft]:
            props: Record = {
                "Protocol": "TCP" if category == "AZFWNetworkRule" else "HTTPS",
                "SourceIp": f"10.1.{rng.randrange(0, 4)}.{rng.randrange(4, 250)}",
                "SourcePort": rng.randrange(1024, 65535),
                "DestinationPort": 443,
                "Action": "Allow" if rng.random() < 0.9 else "Deny",
                "Policy": "afwp-hub",
                "RuleCollectionGroup": "rcg-egress",
                "RuleCollection": "rc-egress",
                "Rule": "allow-dev-tools",
            }
            if category == "AZFWNetworkRule":
                props["DestinationIp"] = azure_ip(rng)
            else:
                props["Fqdn"] = rng.choice(_FQDNS)
                props["TargetUrl"] = ""
                props["IsTlsInspected"] = False
            record = _record(firewall, category, f"{category}Log", when, properties=props)
            return [Draft(when, when, category, record, new_id(rng))]

        return build

    def waf(category: str) -> Builder:
        def build(when: datetime) -> list[Draft]:
            attacker = tor_ip(rng) if rng.random() < 0.3 else person_ip()
            blocked = rng.random() < 0.4
            rule = rng.choice(
                (
                    ("942100", "SQL Injection Attack Detected via libinjection"),
                    ("941100", "XSS Attack Detected via libinjection"),
                    ("930100", "Path Traversal Attack (/../)"),
                )
            )
            if category == "ApplicationGatewayFirewallLog":
                props: Record = {
                    "instanceId": "appgw_1",
                    "clientIp": attacker,
                    "clientPort": str(rng.randrange(1024, 65535)),
                    "requestUri": "/search?q=1%27%20or%201=1--",
                    "ruleSetType": "OWASP",
                    "ruleSetVersion": "3.2",
                    "ruleId": rule[0],
                    "message": rule[1],
                    "action": "Blocked" if blocked else "Matched",
                    "site": "Global",
                    "details": {
                        "message": "Warning. Pattern match",
                        "data": "",
                        "file": "",
                        "line": "",
                    },
                    "hostname": "shop.contoso.com",
                    "transactionId": new_id(rng).replace("-", ""),
                    "policyId": "default",
                    "policyScope": "Global",
                    "policyScopeName": "Global",
                }
                resource, operation = gateway, "ApplicationGatewayFirewall"
            else:
                props = {
                    "clientIP": attacker,
                    "clientPort": str(rng.randrange(1024, 65535)),
                    "socketIP": attacker,
                    "requestUri": "https://shop.contoso.com:443/login",
                    "ruleName": f"Microsoft_DefaultRuleSet-2.1-SQLI-{rule[0]}",
                    "policy": "wafpolicyweb",
                    "action": "Block" if blocked else "Log",
                    "host": "shop.contoso.com",
                    "trackingReference": new_id(rng),
                    "policyMode": "prevention",
                    "details": {"matches": []},
                }
                resource, operation = front_door, "Microsoft.Cdn/Profiles/Write"
            record = _record(resource, category, operation, when, properties=props)
            return [Draft(when, when, category, record, new_id(rng))]

        return build

    def sql_audit(when: datetime) -> list[Draft]:
        action, statement = rng.choice(
            (
                ("BATCH COMPLETED", "SELECT TOP 100 * FROM dbo.Orders WHERE CustomerId = @p0"),
                ("BATCH COMPLETED", "UPDATE dbo.Orders SET Status = 'Shipped' WHERE Id = @p0"),
                ("DATABASE AUTHENTICATION SUCCEEDED", ""),
                ("DATABASE AUTHENTICATION FAILED", ""),
            )
        )
        failed = action.endswith("FAILED")
        props: Record = {
            "event_time": iso7(when),
            "action_id": "BCM " if "BATCH" in action else ("DBAF" if failed else "DBAS"),
            "action_name": action,
            "succeeded": "false" if failed else "true",
            "session_id": rng.randrange(50, 400),
            "server_principal_name": "orders_app",
            "database_principal_name": "dbo",
            "client_ip": azure_ip(rng),
            "application_name": "Microsoft SqlClient Data Provider",
            "database_name": "orders",
            "server_instance_name": sql.name,
            "statement": statement,
            "additional_information": "",
            "is_server_level_audit": "false",
            "class_type": "DB",
            "duration_milliseconds": rng.randrange(0, 400),
            "response_rows": rng.randrange(0, 100),
            "affected_rows": 0,
            "host_name": "vm-web-01",
        }
        record = _record(
            f"{sql.resource_id}/databases/orders",
            "SQLSecurityAuditEvents",
            "AuditEvent",
            when,
            properties=props,
        )
        return [Draft(when, when, "SQLSecurityAuditEvents", record, new_id(rng))]

    def event_hubs(when: datetime) -> list[Draft]:
        hub = rng.choice(hubs)
        activity = new_id(rng)
        name = rng.choice(("Create EventHub", "Update EventHub", "Retreive Namespace"))
        record = {
            "ActivityId": activity,
            "EventName": name,
            "resourceId": hub.resource_id.upper(),
            "SubscriptionId": hub.subscription_id,
            "EventTimeString": when.strftime("%-m/%-d/%Y %-I:%M:%S %p +00:00"),
            "EventProperties": json.dumps(
                {
                    "SubscriptionId": hub.subscription_id,
                    "Namespace": hub.name,
                    "Via": "",
                    "TrackingId": activity,
                }
            ),
            "Status": "Succeeded",
            "Caller": "rpfrontdoor",
            "category": "OperationalLogs",
            "operationName": name,
        }
        return [Draft(when, when, "OperationalLogs", record, activity)]

    def posture(kind: str) -> Builder:
        def build(when: datetime) -> list[Draft]:
            vm = rng.choice(vms)
            name, severity = rng.choice(_ASSESSMENTS)
            healthy = rng.random() < 0.6
            type_ = POSTURE_KINDS[kind]
            code = "Healthy" if healthy else "Unhealthy"
            object_id = f"{vm.resource_id}/providers/Microsoft.Security/assessments/{new_id(rng)}"
            if kind == "DefenderSubAssessments":
                object_id += f"/subAssessments/{new_id(rng)}"
            props: Record
            if kind == "DefenderSecureScores":
                current = round(rng.uniform(20, 45), 2)
                props = {
                    "displayName": "ASC score",
                    "score": {"max": 58, "current": current, "percentage": round(current / 58, 4)},
                    "weight": 58,
                }
                object_id = f"/subscriptions/{sub}/providers/{type_}/ascScore"
            elif kind == "DefenderRegulatoryCompliance":
                props = {
                    "description": "Ensure that multifactor authentication is enabled",
                    "state": "Failed" if not healthy else "Passed",
                    "passedResources": rng.randrange(0, 20),
                    "failedResources": 0 if healthy else rng.randrange(1, 5),
                    "skippedResources": 0,
                }
                object_id = (
                    f"/subscriptions/{sub}/providers/Microsoft.Security/"
                    "regulatoryComplianceStandards/Azure-CIS-1.1.0/"
                    "regulatoryComplianceControls/1.1/regulatoryComplianceAssessments/"
                    f"{new_id(rng)}"
                )
            else:
                props = {
                    "displayName": name,
                    "status": {"code": code},
                    "resourceDetails": {"Source": "Azure", "Id": vm.resource_id},
                    "metadata": {"severity": severity, "assessmentType": "BuiltIn"},
                    "timeGenerated": iso7(when),
                }
            record = {
                "type": type_,
                "id": object_id,
                "name": object_id.rsplit("/", 1)[-1],
                "tenantId": tenant.tenant_id,
                "properties": props,
            }
            return [Draft(when, when, kind, record, new_id(rng))]

        return build

    builders: dict[str, Builder] = {
        "StorageRead": storage("StorageRead", ("GetBlob", "GetBlobProperties", "ListBlobs")),
        "StorageWrite": storage("StorageWrite", ("PutBlob", "PutBlock", "SetBlobMetadata")),
        "StorageDelete": storage("StorageDelete", ("DeleteBlob",)),
        "kube-audit": kube_audit("kube-audit"),
        "kube-audit-admin": kube_audit("kube-audit-admin"),
        "AzureFirewallNetworkRule": firewall_legacy("AzureFirewallNetworkRule"),
        "AzureFirewallApplicationRule": firewall_legacy("AzureFirewallApplicationRule"),
        "AZFWNetworkRule": firewall_structured("AZFWNetworkRule"),
        "AZFWApplicationRule": firewall_structured("AZFWApplicationRule"),
        "ApplicationGatewayFirewallLog": waf("ApplicationGatewayFirewallLog"),
        "FrontDoorWebApplicationFirewallLog": waf("FrontDoorWebApplicationFirewallLog"),
        "SQLSecurityAuditEvents": sql_audit,
        "OperationalLogs": event_hubs,
    }
    builders.update({kind: posture(kind) for kind in POSTURE_KINDS})
    return builders
