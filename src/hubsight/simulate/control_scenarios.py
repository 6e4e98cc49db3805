"""Scenarios in Azure's control plane: Resource Manager operations (Activity Log) and Defender
for Cloud alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from hubsight.simulate import activity
from hubsight.simulate.draft import Context
from hubsight.simulate.geo import tor_ip
from hubsight.simulate.planting import Planted, arm_attack, victim
from hubsight.simulate.tenant import new_id


def diagnostic_setting_deleted(ctx: Context, start: datetime) -> Planted:
    """The diagnostic setting that streams logs to the SIEM is deleted (log tampering)."""
    sub = ctx.tenant.subscriptions[0]
    scope = f"/subscriptions/{sub}/providers/microsoft.insights/diagnosticSettings/send-to-siem"
    return arm_attack(
        ctx,
        start,
        "diagnostic-setting-deleted",
        ["azure.log_tampering"],
        [("Microsoft.Insights/diagnosticSettings/delete", scope)],
        "deleted diagnostic setting send-to-siem",
    )


def eventhub_deleted(ctx: Context, start: datetime) -> Planted:
    """The Event Hub receiving the logs, and its listen policy, are deleted."""
    ns = ctx.tenant.resources_of("namespaces")[0].resource_id
    return arm_attack(
        ctx,
        start,
        "eventhub-deleted",
        ["azure.log_tampering"],
        [
            (
                "Microsoft.EventHub/namespaces/authorizationRules/delete",
                f"{ns}/authorizationRules/hubsight-listen",
            ),
            ("Microsoft.EventHub/namespaces/eventhubs/delete", f"{ns}/eventhubs/insights-logs"),
        ],
        "deleted Event Hub insights-logs and its policy hubsight-listen",
    )


def vm_start_stop(ctx: Context, start: datetime) -> Planted:
    """The seed document's sample: start a virtual machine, then stop (deallocate) it."""
    vm = ctx.rng.choice(ctx.tenant.resources_of("virtualMachines")).resource_id
    plant = arm_attack(
        ctx,
        start,
        "vm-start-stop",
        [],
        [
            ("Microsoft.Compute/virtualMachines/start/action", vm),
        ],
        "started and stopped a virtual machine",
        from_office=True,
    )
    actor = next(u for u in ctx.tenant.users if u.upn == plant.user)
    stop = activity.Operation(
        "Microsoft.Compute/virtualMachines/deallocate/action",
        vm,
        actor,
        plant.source_ips[0],
        role="Owner",
    )
    plant.drafts.extend(activity.administrative(ctx, start + timedelta(minutes=10), stop))
    return plant


def list_keys(ctx: Context, start: datetime) -> Planted:
    """The seed document's sample: list the keys of an Event Hubs Shared Access Policy."""
    ns = ctx.tenant.resources_of("namespaces")[0].resource_id
    return arm_attack(
        ctx,
        start,
        "list-keys",
        ["azure.access_keys_listed"],
        [
            (
                "Microsoft.EventHub/namespaces/authorizationRules/listKeys/action",
                f"{ns}/authorizationRules/RootManageSharedAccessKey",
            ),
        ],
        "listed the keys of Shared Access Policy RootManageSharedAccessKey",
    )


def defender_alert(ctx: Context, start: datetime) -> Planted:
    """Defender for Cloud sees a key vault read from a Tor exit node."""
    rng = ctx.rng
    user = victim(ctx)
    ip = tor_ip(rng)
    vault = ctx.tenant.resources_of("vaults")[0]
    alert = activity.DefenderAlert(
        alert_type="KV_TORAccess",
        name="Access from a TOR exit node to a key vault",
        description=f"The key vault {vault.name} has been accessed by {user.upn} from a known "
        "TOR exit node. This may indicate a threat actor accessing the vault to reach the "
        "secrets it contains.",
        severity="Medium",
        intent="CredentialAccess",
        resource=vault,
        ip=ip,
        user=user,
        remediation=(
            "Contact the user and ask whether the access was legitimate.",
            "Rotate the secrets of the key vault if it was not.",
        ),
    )
    plant = Planted(
        "defender-alert",
        f"Defender alert KV_TORAccess on {vault.name} for {user.upn} from {ip}",
        start,
        user.upn,
        [ip],
        ["thirdparty.vendor_alert"],
    )
    plant.drafts.append(activity.defender_export(ctx, start, alert))
    plant.drafts.append(activity.defender_activity(ctx, start, alert))
    return plant


def rbac_owner_assigned(ctx: Context, start: datetime) -> Planted:
    """A user is made Owner of the production subscription."""
    sub = ctx.tenant.subscriptions[0]
    grantee = victim(ctx)
    assignment = new_id(ctx.rng)
    body = {
        "properties": {
            "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
            "roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
            "principalId": grantee.object_id,
            "principalType": "User",
            "scope": f"/subscriptions/{sub}",
        }
    }
    return arm_attack(
        ctx,
        start,
        "rbac-owner-assigned",
        ["azure.rbac_owner_assigned"],
        [
            (
                "Microsoft.Authorization/roleAssignments/write",
                f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/"
                f"{assignment}",
            )
        ],
        f"made {grantee.upn} Owner of the subscription",
        body=body,
    )


def keyvault_purge(ctx: Context, start: datetime) -> Planted:
    """A key vault is deleted, then purged so that it cannot be recovered."""
    vault = ctx.tenant.resources_of("vaults")[0]
    deleted = (
        f"/subscriptions/{vault.subscription_id}/providers/Microsoft.KeyVault/locations/"
        f"{vault.region}/deletedVaults/{vault.name}"
    )
    return arm_attack(
        ctx,
        start,
        "keyvault-purge",
        ["azure.keyvault_purge"],
        [
            ("Microsoft.KeyVault/vaults/delete", vault.resource_id),
            ("Microsoft.KeyVault/locations/deletedVaults/purge/action", deleted),
        ],
        f"deleted and purged key vault {vault.name}",
    )


def storage_keys_listed(ctx: Context, start: datetime) -> Planted:
    """A storage account's access keys are listed, then one is regenerated."""
    account = ctx.tenant.resources_of("storageAccounts")[0]
    return arm_attack(
        ctx,
        start,
        "storage-keys-listed",
        ["azure.access_keys_listed"],
        [
            ("Microsoft.Storage/storageAccounts/listKeys/action", account.resource_id),
            ("Microsoft.Storage/storageAccounts/regenerateKey/action", account.resource_id),
        ],
        f"listed and regenerated the keys of storage account {account.name}",
    )


def vm_run_command(ctx: Context, start: datetime) -> Planted:
    """A script is run on a virtual machine through the control plane."""
    vm = ctx.tenant.resources_of("virtualMachines")[0]
    return arm_attack(
        ctx,
        start,
        "vm-run-command",
        ["azure.vm_run_command"],
        [("Microsoft.Compute/virtualMachines/runCommand/action", vm.resource_id)],
        f"ran a PowerShell script on {vm.name}",
        body={"commandId": "RunPowerShellScript", "script": ["whoami /all"]},
    )


def resource_group_deleted(ctx: Context, start: datetime) -> Planted:
    """A whole resource group is deleted."""
    dev = ctx.tenant.subscriptions[1]
    return arm_attack(
        ctx,
        start,
        "resource-group-deleted",
        ["azure.resource_group_deleted"],
        [
            (
                "Microsoft.Resources/subscriptions/resourceGroups/delete",
                f"/subscriptions/{dev}/resourceGroups/rg-dev",
            )
        ],
        "deleted resource group rg-dev",
    )


def deletion_burst(ctx: Context, start: datetime) -> Planted:
    """One caller deletes a dozen resources in a few minutes."""
    tenant = ctx.tenant
    prod = tenant.subscriptions[0]
    base = f"/subscriptions/{prod}/resourceGroups/rg-prod/providers"
    actions = [
        (f"Microsoft.Compute/{kind}/delete", f"{base}/Microsoft.Compute/{kind}/{name}-{n:02}")
        for n in range(1, 5)
        for kind, name in (("disks", "disk-data"), ("snapshots", "snap-nightly"))
    ]
    actions += [
        ("Microsoft.Compute/virtualMachines/delete", vm.resource_id)
        for vm in tenant.resources_of("virtualMachines")[:4]
    ]
    return arm_attack(
        ctx,
        start,
        "deletion-burst",
        ["azure.deletion_burst"],
        actions,
        f"deleted {len(actions)} resources within {len(actions) * 40 // 60} minutes",
    )
