"""The everyday changes people and automation make: directory audits and ARM operations."""

from __future__ import annotations

from datetime import datetime

from hubsight.simulate.activity import Operation
from hubsight.simulate.directory import (
    ROLE_TEMPLATES,
    Audit,
    app_target,
    changed,
    group_target,
    user_target,
)
from hubsight.simulate.draft import Context, Record
from hubsight.simulate.geo import AZURE_REGIONS
from hubsight.simulate.tenant import User, new_id

_DEPARTMENTS = ("Sales", "Finance", "Engineering", "Marketing", "Support", "Legal")


def password_change(person: User, ip: str) -> Audit:
    """``person`` changing their own password from ``ip``."""
    return Audit(
        "Change user password",
        "UserManagement",
        "Core Directory",
        "Update",
        user_target(person, []),
        actor=person,
        actor_ip=ip,
    )


def everyday_change(ctx: Context, person: User) -> Audit:
    """A routine directory change: profile edits, group membership, devices, applications."""
    rng = ctx.rng
    tenant = ctx.tenant
    admin = rng.choice(tenant.admins) if tenant.admins else person
    admin_ip = tenant.office_ip
    roll = rng.random()
    if roll < 0.25:
        return Audit(
            "Update user",
            "UserManagement",
            "Core Directory",
            "Update",
            user_target(
                person,
                [changed("Department", [rng.choice(_DEPARTMENTS)], [rng.choice(_DEPARTMENTS)])],
            ),
            actor=admin,
            actor_ip=admin_ip,
        )
    if roll < 0.45:
        group = rng.choice(("All Sales", "VPN Users", "Finance Readers", "Engineering"))
        group_id = new_id(rng)
        member = user_target(
            person,
            [changed("Group.ObjectID", None, group_id), changed("Group.DisplayName", None, group)],
        )
        # Microsoft's documented shape: the group first, then the member.
        return Audit(
            "Add member to group",
            "GroupManagement",
            "Core Directory",
            "Assign",
            group_target(group, group_id),
            actor=admin,
            actor_ip=admin_ip,
            also=(member,),
        )
    # Users register security info when they join or get a new phone: a few a day per 1,000
    # users (a phone every two to three years, a joiner's two methods), not once a day each.
    if roll < 0.4503:
        return Audit(
            "User registered security info",
            "UserManagement",
            "Authentication Methods",
            "Add",
            user_target(person, []),
            actor=person,
            actor_ip=person.home.ip(rng),
        )
    if roll < 0.84:
        # Device updates (sign-in activity, compliance, OS version) are most of a directory's
        # routine changes.
        device = rng.choice(person.devices)
        target = {
            "id": device.device_id,
            "displayName": device.name,
            "type": "Device",
            "modifiedProperties": [
                changed("ApproximateLastLogonTimestamp", None, "2026-01-01T00:00:00Z")
            ],
            "administrativeUnits": [],
        }
        return Audit("Update device", "Device", "Core Directory", "Update", target, actor_app=None)
    if roll < 0.93:
        app = rng.choice(tenant.service_principals)
        return Audit(
            "Update application",
            "ApplicationManagement",
            "Core Directory",
            "Update",
            app_target(
                app,
                [
                    changed(
                        "AppAddress",
                        [],
                        [{"AddressType": 0, "Address": f"https://{app.name}.contoso.com/callback"}],
                    )
                ],
            ),
            actor=admin,
            actor_ip=admin_ip,
        )
    if roll < 0.97:
        # Non-privileged roles are granted too; a detection must tell them apart.
        role = rng.choice(("Message Center Reader", "Reports Reader"))
        target = user_target(
            person,
            [
                changed("Role.ObjectID", None, new_id(rng)),
                changed("Role.DisplayName", None, role),
                changed("Role.TemplateId", None, ROLE_TEMPLATES[role]),
            ],
        )
        return Audit(
            "Add member to role",
            "RoleManagement",
            "Core Directory",
            "Assign",
            target,
            actor=admin,
            actor_ip=admin_ip,
        )
    return Audit(
        "Invite external user",
        "UserManagement",
        "Invited Users",
        "Add",
        user_target(person, []),
        actor=admin,
        actor_ip=admin_ip,
    )


# (ARM action, resource kind it applies to, whether automation rather than people does it)
_OPERATIONS = (
    ("Microsoft.Compute/virtualMachines/write", "virtualMachines", False),
    ("Microsoft.Resources/deployments/write", None, True),
    ("Microsoft.Resources/tags/write", None, False),
    ("Microsoft.Network/networkSecurityGroups/write", "networkSecurityGroups", True),
    ("Microsoft.Web/sites/write", "sites", True),
    ("Microsoft.Web/sites/restart/action", "sites", False),
    ("Microsoft.KeyVault/vaults/write", "vaults", False),
    ("Microsoft.Sql/servers/databases/write", "servers", True),
    ("Microsoft.Insights/diagnosticSettings/write", "namespaces", False),
    ("Microsoft.Storage/storageAccounts/write", "storageAccounts", True),
)


def _nsg_rule(name: str, priority: int, port: str, source: str, access: str) -> Record:
    return {
        "name": name,
        "properties": {
            "protocol": "Tcp" if port != "*" else "*",
            "sourcePortRange": "*",
            "destinationPortRange": port,
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": "*",
            "access": access,
            "priority": priority,
            "direction": "Inbound",
        },
    }


# What pipelines and admins write to the web tier's NSG every day, whole (as Terraform and ARM
# templates do): HTTPS from the Internet, SSH from inside the network only, nothing else. The
# exposure rules must read it and raise at most the web port's one low alert a day.
_NSG_WEB_BODY: Record = {
    "location": AZURE_REGIONS[0][0],
    "properties": {
        "securityRules": [
            _nsg_rule("allow-https", 100, "443", "Internet", "Allow"),
            _nsg_rule("allow-ssh-vnet", 200, "22", "VirtualNetwork", "Allow"),
            _nsg_rule("deny-all-inbound", 4096, "*", "*", "Deny"),
        ]
    },
}
_BODIES = {"Microsoft.Network/networkSecurityGroups/write": _NSG_WEB_BODY}


def _network_acls(office: str) -> Record:
    """A firewall that lets in the office and trusted Azure services only."""
    return {
        "bypass": "AzureServices",
        "defaultAction": "Deny",
        "ipRules": [{"value": office, "action": "Allow"}],
        "virtualNetworkRules": [],
    }


def _everyday_body(action: str, office: str) -> Record:
    """What pipelines write to a storage account and admins to a key vault every day, whole:
    public access on, behind a firewall that lets the office in. The data exposure rules must
    read it and stay quiet."""
    if action == "Microsoft.Storage/storageAccounts/write":
        return {
            "kind": "StorageV2",
            "location": AZURE_REGIONS[0][0],
            "sku": {"name": "Standard_ZRS"},
            "properties": {
                "minimumTlsVersion": "TLS1_2",
                "allowBlobPublicAccess": False,
                "publicNetworkAccess": "Enabled",
                "networkAcls": _network_acls(office),
            },
        }
    if action == "Microsoft.KeyVault/vaults/write":
        return {
            "location": AZURE_REGIONS[0][0],
            "properties": {
                "enableRbacAuthorization": True,
                "publicNetworkAccess": "Enabled",
                "networkAcls": _network_acls(office),
            },
        }
    return _BODIES.get(action, {})


def everyday_operation(ctx: Context, when: datetime) -> Operation:
    """A routine Azure Resource Manager operation by an admin or a deployment pipeline."""
    rng = ctx.rng
    tenant = ctx.tenant
    action, kind, automated = rng.choice(_OPERATIONS)
    resource = rng.choice(tenant.resources_of(kind) if kind else list(tenant.resources))
    scope = resource.resource_id
    if action == "Microsoft.Insights/diagnosticSettings/write":
        scope = f"{scope}/providers/microsoft.insights/diagnosticSettings/send-to-siem"
    elif action == "Microsoft.Resources/deployments/write":
        scope = (
            f"/subscriptions/{resource.subscription_id}/resourceGroups/"
            f"{resource.resource_group}/providers/Microsoft.Resources/deployments/"
            f"release-{when:%Y%m%d}-{rng.randrange(100, 999)}"
        )
    elif action == "Microsoft.Sql/servers/databases/write":
        scope = f"{scope}/databases/orders"
    body = _everyday_body(action, tenant.office_ip)
    if automated and rng.random() < 0.8:
        pipelines = [
            sp
            for sp in tenant.service_principals
            if sp.name in ("terraform-deployer", "github-actions-deploy")
        ]
        sp = rng.choice(pipelines)
        return Operation(
            action, scope, sp, rng.choice(sp.addresses), role="Contributor", extra=body
        )
    person = rng.choice(tenant.admins) if tenant.admins else rng.choice(tenant.users)
    ip = tenant.office_ip if rng.random() < 0.7 else person.home.ip(rng)
    failed = rng.random() < 0.03
    return Operation(
        action,
        scope,
        person,
        ip,
        role="Contributor",
        status_code="Forbidden" if failed else "OK",
        failed=failed,
        extra=body,
    )
