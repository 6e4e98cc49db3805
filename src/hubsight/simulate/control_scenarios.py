"""Scenarios in the control planes: directory changes (AuditLogs), Azure Resource Manager
operations (Activity Log) and Defender for Cloud alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from hubsight.simulate import activity, directory, signins
from hubsight.simulate.directory import ROLE_TEMPLATES, Audit, app_target, changed, user_target
from hubsight.simulate.draft import Context
from hubsight.simulate.geo import tor_ip
from hubsight.simulate.planting import Planted, arm_attack, hostile, victim
from hubsight.simulate.tenant import new_id


def privileged_role_grant(ctx: Context, start: datetime) -> Planted:
    """An administrator makes an ordinary user Global Administrator."""
    rng = ctx.rng
    actor = victim(ctx, admin=True)
    target = victim(ctx)
    ip = ctx.tenant.office_ip
    role = "Global Administrator"
    plant = Planted(
        "privileged-role-grant",
        f"{actor.upn} added {target.upn} to {role}",
        start,
        target.upn,
        [ip],
        ["admin.privileged_role_granted"],
    )
    modified = [
        changed("Role.ObjectID", None, new_id(rng)),
        changed("Role.DisplayName", None, role),
        changed("Role.TemplateId", None, ROLE_TEMPLATES[role]),
        changed("Role.WellKnownObjectName", None, "TenantAdmins"),
    ]
    change = Audit(
        "Add member to role",
        "RoleManagement",
        "Core Directory",
        "Assign",
        user_target(target, modified),
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start, change))
    return plant


def new_app_credential(ctx: Context, start: datetime) -> Planted:
    """A new client secret is added to an application, then used from a hostile address."""
    rng = ctx.rng
    actor = victim(ctx, admin=True)
    app = rng.choice(ctx.tenant.service_principals)
    _, ip, _ = hostile(ctx)
    key_id = new_id(rng)
    plant = Planted(
        "new-app-credential",
        f"{actor.upn} added a client secret to {app.name}, used 10 minutes later from {ip}",
        start,
        actor.upn,
        [ip],
        ["admin.app_credential_added", "auth.service_principal_new_network"],
    )
    description = f'["[KeyIdentifier={key_id},KeyType=Password,KeyUsage=Verify,DisplayName=sync]"]'
    change = Audit(
        "Update application – Certificates and secrets management ",
        "ApplicationManagement",
        "Core Directory",
        "Update",
        app_target(
            app,
            [
                {"displayName": "KeyDescription", "oldValue": "[]", "newValue": description},
                changed("Included Updated Properties", None, "KeyDescription"),
            ],
        ),
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start, change))
    used = start + timedelta(minutes=10)
    plant.drafts.append(signins.service_principal_sign_in(ctx, used, app, ip))
    return plant


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
