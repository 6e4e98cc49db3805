"""One scenario per family of the shipped Sigma content (``detect/content/<family>/``).

Each plants what an intruder in that part of Azure does, as Azure logs it, so the end-to-end
test proves every family fires in the running product.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hubsight.simulate import activity, directory
from hubsight.simulate.directory import Audit, user_target
from hubsight.simulate.draft import Context, Record, iso7
from hubsight.simulate.geo import azure_ip
from hubsight.simulate.planting import Planted, arm_attack, hostile, victim
from hubsight.simulate.resources import StorageRequest, storage_request
from hubsight.simulate.tenant import new_id


def _rg(ctx: Context) -> str:
    return f"/subscriptions/{ctx.tenant.subscriptions[0]}/resourceGroups/rg-prod/providers"


def keyvault_opened(ctx: Context, start: datetime) -> Planted:
    """A vault's firewall is opened to all networks, then the vault is deleted."""
    vault = ctx.tenant.resources_of("vaults")[0].resource_id
    plant = arm_attack(
        ctx,
        start,
        "keyvault-opened",
        ["keyvault.network_opened", "keyvault.vault_deleted"],
        [("Microsoft.KeyVault/vaults/write", vault)],
        "opened a key vault's firewall to all networks, then deleted the vault",
        body={"properties": {"networkAcls": {"defaultAction": "Allow", "bypass": "None"}}},
    )
    _more(ctx, plant, start, [("Microsoft.KeyVault/vaults/delete", vault)])
    return plant


def storage_exposed(ctx: Context, start: datetime) -> Planted:
    """Blob soft delete is switched off on a storage account, then the account is deleted."""
    account = ctx.tenant.resources_of("storageAccounts")[0].resource_id
    plant = arm_attack(
        ctx,
        start,
        "storage-soft-delete-off",
        ["storage.blob_soft_delete_disabled", "storage.account_deleted"],
        [
            (
                "Microsoft.Storage/storageAccounts/blobServices/write",
                f"{account}/blobServices/default",
            )
        ],
        "switched blob soft delete off, then deleted the storage account",
        body={"properties": {"deleteRetentionPolicy": {"enabled": False}}},
    )
    _more(ctx, plant, start, [("Microsoft.Storage/storageAccounts/delete", account)])
    return plant


def disk_exported(ctx: Context, start: datetime) -> Planted:
    """A VM's disk is exported through a SAS link, then its snapshot is deleted."""
    rg = _rg(ctx)
    return arm_attack(
        ctx,
        start,
        "disk-exported",
        ["compute.disk_exported", "compute.snapshot_deleted"],
        [
            ("Microsoft.Compute/disks/beginGetAccess/action", f"{rg}/Microsoft.Compute/disks/os-1"),
            (
                "Microsoft.Compute/snapshots/delete",
                f"{rg}/Microsoft.Compute/snapshots/os-1-nightly",
            ),
        ],
        "exported a managed disk and deleted its snapshot",
    )


def aks_admin_credentials(ctx: Context, start: datetime) -> Planted:
    """The admin kubeconfig of a cluster is fetched and a command run in it."""
    cluster = f"{_rg(ctx)}/Microsoft.ContainerService/managedClusters/aks-prod"
    return arm_attack(
        ctx,
        start,
        "aks-admin-credentials",
        ["aks.admin_credentials_listed", "aks.run_command"],
        [
            (
                "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
                cluster,
            ),
            ("Microsoft.ContainerService/managedClusters/runCommand/action", cluster),
        ],
        "fetched a cluster's admin credentials and ran a command in it",
    )


def nsg_opened(ctx: Context, start: datetime) -> Planted:
    """An NSG rule opening RDP to the whole internet."""
    nsg = ctx.tenant.resources_of("networkSecurityGroups")[0].resource_id
    return arm_attack(
        ctx,
        start,
        "nsg-rdp-open",
        ["network.nsg_rule_any_source", "network.nsg_rule_management_port"],
        [
            (
                "Microsoft.Network/networkSecurityGroups/securityRules/write",
                f"{nsg}/securityRules/rdp",
            )
        ],
        "opened RDP to any address in a network security group",
        body={
            "properties": {
                "protocol": "Tcp",
                "sourceAddressPrefix": "*",
                "destinationPortRange": "3389",
                "access": "Allow",
                "direction": "Inbound",
                "priority": 100,
            }
        },
    )


def monitoring_blinded(ctx: Context, start: datetime) -> Planted:
    """The security workspace's Sentinel rule and the workspace itself are deleted."""
    workspace = f"{_rg(ctx)}/Microsoft.OperationalInsights/workspaces/law-security"
    return arm_attack(
        ctx,
        start,
        "monitoring-blinded",
        ["monitoring.sentinel_rule_deleted", "monitoring.workspace_deleted"],
        [
            (
                "Microsoft.SecurityInsights/alertRules/delete",
                f"{workspace}/providers/Microsoft.SecurityInsights/alertRules/brute-force",
            ),
            ("Microsoft.OperationalInsights/workspaces/delete", workspace),
        ],
        "deleted a Sentinel analytics rule and the security workspace",
    )


def automation_backdoor(ctx: Context, start: datetime) -> Planted:
    """A runbook is replaced and a webhook added to start it without signing in."""
    account = f"{_rg(ctx)}/Microsoft.Automation/automationAccounts/aa-ops"
    return arm_attack(
        ctx,
        start,
        "automation-backdoor",
        ["automation.runbook_changed", "automation.webhook_created"],
        [
            ("Microsoft.Automation/automationAccounts/runbooks/write", f"{account}/runbooks/sync"),
            ("Microsoft.Automation/automationAccounts/webhooks/write", f"{account}/webhooks/go"),
        ],
        "replaced a runbook and added a webhook to start it",
    )


def governance_unlocked(ctx: Context, start: datetime) -> Planted:
    """A resource lock is removed and backup soft delete switched off."""
    rg = _rg(ctx)
    vault = f"{rg}/Microsoft.RecoveryServices/vaults/rsv-prod"
    plant = arm_attack(
        ctx,
        start,
        "governance-unlocked",
        ["governance.lock_deleted", "governance.backup_soft_delete_disabled"],
        [
            (
                "Microsoft.RecoveryServices/vaults/backupconfig/write",
                f"{vault}/backupconfig/vaultconfig",
            )
        ],
        "switched backup soft delete off and removed a resource lock",
        body={"properties": {"softDeleteFeatureState": "Disabled"}},
    )
    lock = f"{rg}/Microsoft.Authorization/locks/do-not-delete"
    _more(ctx, plant, start, [("Microsoft.Authorization/locks/delete", lock)])
    return plant


def defender_downgraded(ctx: Context, start: datetime) -> Planted:
    """A Defender plan is set to Free and an alert suppression rule added."""
    sub = f"/subscriptions/{ctx.tenant.subscriptions[0]}/providers/Microsoft.Security"
    plant = arm_attack(
        ctx,
        start,
        "defender-downgraded",
        ["defender.plan_downgraded", "defender.suppression_rule_created"],
        [("Microsoft.Security/pricings/write", f"{sub}/pricings/VirtualMachines")],
        "set a Defender plan to Free and added an alert suppression rule",
        body={"properties": {"pricingTier": "Free"}},
    )
    rule = f"{sub}/alertsSuppressionRules/hide-all"
    _more(ctx, plant, start, [("Microsoft.Security/alertsSuppressionRules/write", rule)])
    return plant


def sql_opened(ctx: Context, start: datetime) -> Planted:
    """A SQL server's firewall is opened to every address and its auditing switched off."""
    server = ctx.tenant.resources_of("servers")[0].resource_id
    plant = arm_attack(
        ctx,
        start,
        "sql-opened",
        ["sql.firewall_all_addresses", "sql.auditing_disabled"],
        [("Microsoft.Sql/servers/firewallRules/write", f"{server}/firewallRules/all")],
        "opened a SQL server's firewall to every address and switched auditing off",
        # The rule Azure writes for "allow every address" (not a socket binding).
        body={"properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "255.255.255.255"}},  # noqa: S104
    )
    auditing = f"{server}/auditingSettings/default"
    off = {"properties": {"state": "Disabled"}}
    _more(ctx, plant, start, [("Microsoft.Sql/servers/auditingSettings/write", auditing)], off)
    return plant


def entra_mfa_disabled(ctx: Context, start: datetime) -> Planted:
    """An administrator switches per-user MFA off for a user and changes a named location."""
    actor = victim(ctx, admin=True)
    target = victim(ctx)
    _, ip, _ = hostile(ctx)
    plant = Planted(
        "entra-mfa-disabled",
        f"{actor.upn} disabled MFA for {target.upn} and changed a named location from {ip}",
        start,
        actor.upn,
        [ip],
        ["entra.mfa_disabled_for_user", "entra.named_location_changed"],
    )
    disable = Audit(
        "Disable Strong Authentication",
        "UserManagement",
        "Core Directory",
        "Update",
        user_target(target, []),
        actor=actor,
        actor_ip=ip,
    )
    location: Record = {
        "id": "5f4e3d2c-1b0a-4998-8776-655443322110",
        "displayName": "Trusted partners",
        "type": "Policy",
        "modifiedProperties": [],
    }
    named = Audit(
        "Update named location",
        "Policy",
        "Conditional Access",
        "Update",
        location,
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start, disable))
    plant.drafts.append(directory.audit(ctx, start + timedelta(minutes=1), named))
    return plant


def graph_enumeration(ctx: Context, start: datetime) -> Planted:
    """A signed-in intruder pages through the directory with Graph, then backs up a secret."""
    user = victim(ctx)
    _, ip, _ = hostile(ctx)
    plant = Planted(
        "graph-enumeration",
        f"{user.upn} listed directory objects 25 times in 75 s and backed up a secret from {ip}",
        start,
        user.upn,
        [ip],
        ["graph.enumeration_burst", "graph.keyvault_objects_backed_up"],
    )
    kinds = ("users", "groups", "servicePrincipals", "applications", "directoryRoles")
    for n in range(25):
        when = start + timedelta(seconds=3 * n)
        draft = directory.graph_activity(ctx, when, user, ip)
        # Paged listing of one kind of directory object after another.
        draft.record["time"] = iso7(when)
        draft.record["properties"].update(
            requestMethod="GET",
            responseStatusCode=200,
            requestUri=f"https://graph.microsoft.com/v1.0/{kinds[n % 5]}?$top=999&$skiptoken=p{n}",
        )
        plant.drafts.append(draft)
    vault = ctx.tenant.resources_of("vaults")[0]
    workload = ctx.tenant.managed_identities[0]
    backup = activity.key_vault_audit(ctx, start + timedelta(minutes=2), vault, workload, ip)
    backup.record["operationName"] = "SecretBackup"
    plant.drafts.append(backup)
    return plant


_AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


def data_plane_theft(ctx: Context, start: datetime) -> Planted:
    """An unknown application reads a mailbox and a file, a stolen account reads a vault's
    secret, and a leaked SAS token is used from the intruder's address."""
    rng = ctx.rng
    user = victim(ctx)
    _, ip, _ = hostile(ctx)
    app, principal = new_id(rng), new_id(rng)
    plant = Planted(
        "data-plane-theft",
        f"application {app} read {user.upn}'s mail and files, {user.upn}'s account read a "
        f"key vault secret and a SAS token was used from {ip}",
        start,
        user.upn,
        [ip],
        [
            "graph.new_app_reads_mail",
            "graph.new_app_reads_files",
            "graph.new_secret_reader",
            "graph.sas_outside_tenant",
        ],
    )
    mail = f"https://graph.microsoft.com/v1.0/users/{user.upn}/messages?$top=100"
    file = (
        f"https://graph.microsoft.com/v1.0/users/{user.upn}/drive/root:/Finance/pay.xlsx:/content"
    )
    # First what the tenant does every day, so the baselines have history: the user's own mail
    # client and the vault's workload.
    for n, uri in enumerate((mail, file)):
        usual = directory.graph_activity(ctx, start - timedelta(minutes=20 - n), user, ip)
        usual.record["callerIpAddress"] = home = user.home.ip(rng)
        usual.record["properties"].update(
            requestMethod="GET", responseStatusCode=200, requestUri=uri, ipAddress=home
        )
        plant.drafts.append(usual)
    vault = ctx.tenant.resources_of("vaults")[0]
    workload = ctx.tenant.managed_identities[0]
    routine = activity.key_vault_audit(ctx, start - timedelta(minutes=15), vault, workload, ip)
    routine.record.update(operationName="SecretGet", callerIpAddress=azure_ip(rng))
    plant.drafts.append(routine)
    # Then the intruder: an application with its own permissions (no user signed in)...
    for n, uri in enumerate((mail, file)):
        read = directory.graph_activity(ctx, start + timedelta(seconds=30 * n), user, ip)
        read.record["properties"].update(
            requestMethod="GET",
            responseStatusCode=200,
            requestUri=uri,
            appId=app,
            servicePrincipalId=principal,
            userId="",
            scopes="",
            roles="Mail.Read Files.Read.All",
        )
        plant.drafts.append(read)
    # ...the user's stolen account reading a secret...
    secret = activity.key_vault_audit(ctx, start + timedelta(minutes=1), vault, workload, ip)
    claim = {"oid": user.object_id, "upn": user.upn, "appid": _AZURE_CLI}
    secret.record.update(operationName="SecretGet", identity={"claim": claim})
    plant.drafts.append(secret)
    # ...and a SAS token used from the intruder's address.
    account = ctx.tenant.resources_of("storageAccounts")[0]
    sas = StorageRequest("StorageRead", "GetBlob", "SAS", ip, blob="backups/db.bak")
    plant.drafts.append(storage_request(ctx, start + timedelta(minutes=2), account, sas))
    return plant


def _more(
    ctx: Context,
    plant: Planted,
    start: datetime,
    actions: list[tuple[str, str]],
    body: Record | None = None,
) -> None:
    # Further operations by the same actor, from the same address, a few minutes later.
    actor = next(u for u in ctx.tenant.users if u.upn == plant.user)
    for n, (action, scope) in enumerate(actions, start=1):
        op = activity.Operation(
            action, scope, actor, plant.source_ips[0], role="Owner", extra=body or {}
        )
        plant.drafts.extend(activity.administrative(ctx, start + timedelta(minutes=3 * n), op))


SCENARIOS = {
    "keyvault-opened": keyvault_opened,
    "storage-soft-delete-off": storage_exposed,
    "disk-exported": disk_exported,
    "aks-admin-credentials": aks_admin_credentials,
    "nsg-rdp-open": nsg_opened,
    "monitoring-blinded": monitoring_blinded,
    "automation-backdoor": automation_backdoor,
    "governance-unlocked": governance_unlocked,
    "defender-downgraded": defender_downgraded,
    "sql-opened": sql_opened,
    "entra-mfa-disabled": entra_mfa_disabled,
    "graph-enumeration": graph_enumeration,
    "data-plane-theft": data_plane_theft,
}
