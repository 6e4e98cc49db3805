"""Scenarios in the directory: Entra ID changes that AuditLogs record."""

from __future__ import annotations

from datetime import datetime, timedelta

from hubsight.simulate import directory, signins
from hubsight.simulate.directory import (
    ROLE_TEMPLATES,
    Audit,
    app_target,
    changed,
    group_target,
    user_target,
)
from hubsight.simulate.draft import Context, Record
from hubsight.simulate.planting import Planted, hostile, victim
from hubsight.simulate.tenant import User, new_id


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


def _role_change(ctx: Context, actor: User, target: User, role: str, ip: str) -> Audit:
    return Audit(
        "Add member to role",
        "RoleManagement",
        "Core Directory",
        "Assign",
        user_target(
            target,
            [
                changed("Role.ObjectID", None, new_id(ctx.rng)),
                changed("Role.DisplayName", None, role),
                changed("Role.TemplateId", None, ROLE_TEMPLATES[role]),
            ],
        ),
        actor=actor,
        actor_ip=ip,
    )


def privileged_mfa_changed(ctx: Context, start: datetime) -> Planted:
    """A user is made Privileged Role Administrator, then given an attacker's MFA method."""
    actor = victim(ctx, admin=True)
    target = victim(ctx)
    _, ip, _ = hostile(ctx)
    role = "Privileged Role Administrator"
    plant = Planted(
        "privileged-mfa-changed",
        f"{actor.upn} made {target.upn} {role}, then registered a new phone for them from {ip}",
        start,
        target.upn,
        [ctx.tenant.office_ip, ip],
        ["admin.privileged_role_granted", "admin.privileged_mfa_changed"],
    )
    grant = _role_change(ctx, actor, target, role, ctx.tenant.office_ip)
    plant.drafts.append(directory.audit(ctx, start, grant))
    method = Audit(
        "Admin registered security info",
        "UserManagement",
        "Authentication Methods",
        "Add",
        user_target(target, [changed("StrongAuthenticationPhoneAppDetail", None, "+1 555 0100")]),
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start + timedelta(minutes=12), method))
    return plant


def privileged_group_member(ctx: Context, start: datetime) -> Planted:
    """A user is added to the group that holds the tenant's administrator roles."""
    actor = victim(ctx, admin=True)
    target = victim(ctx)
    group = "Tier0 Admins"
    plant = Planted(
        "privileged-group-member",
        f"{actor.upn} added {target.upn} to group {group}",
        start,
        target.upn,
        [ctx.tenant.office_ip],
        ["admin.privileged_group_member"],
    )
    group_id = new_id(ctx.rng)
    # Microsoft's documented shape: the group first, then the member.
    change = Audit(
        "Add member to group",
        "GroupManagement",
        "Core Directory",
        "Assign",
        group_target(group, group_id),
        actor=actor,
        actor_ip=ctx.tenant.office_ip,
        also=(
            user_target(
                target,
                [
                    changed("Group.ObjectID", None, group_id),
                    changed("Group.DisplayName", None, group),
                ],
            ),
        ),
    )
    plant.drafts.append(directory.audit(ctx, start, change))
    return plant


def high_privilege_consent(ctx: Context, start: datetime) -> Planted:
    """An administrator consents, for the whole tenant, to an unknown app reading all mail."""
    rng = ctx.rng
    actor = victim(ctx, admin=True)
    _, ip, _ = hostile(ctx)
    app_name = "Mail Sync Pro"
    plant = Planted(
        "high-privilege-consent",
        f"{actor.upn} granted admin consent to {app_name} (Mail.ReadWrite, Files.ReadWrite.All) "
        f"from {ip}",
        start,
        actor.upn,
        [ip],
        ["admin.high_privilege_consent"],
    )
    target: Record = {
        "id": new_id(rng),
        "displayName": app_name,
        "type": "ServicePrincipal",
        "modifiedProperties": [
            changed("ConsentContext.IsAdminConsent", None, "True"),
            changed("ConsentContext.OnBehalfOfAll", None, "True"),
            changed(
                "ConsentAction.Permissions",
                None,
                f"[] => [[Id: {new_id(rng)}, ClientId: {new_id(rng)}, PrincipalId: , "
                "ResourceId: 00000003-0000-0000-c000-000000000000, ConsentType: AllPrincipals, "
                "Scope:  Mail.ReadWrite Files.ReadWrite.All offline_access User.Read, ]]; ",
            ),
            changed("TargetId.ServicePrincipalNames", None, new_id(rng)),
        ],
        "administrativeUnits": [],
    }
    change = Audit(
        "Consent to application",
        "ApplicationManagement",
        "Core Directory",
        "Assign",
        target,
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start, change))
    return plant


def federation_changed(ctx: Context, start: datetime) -> Planted:
    """The tenant's domain is switched to federated sign-in at an attacker's identity provider."""
    actor = victim(ctx, admin=True)
    _, ip, _ = hostile(ctx)
    domain = ctx.tenant.domain
    plant = Planted(
        "federation-changed",
        f"{actor.upn} federated {domain} with an external identity provider from {ip}",
        start,
        actor.upn,
        [ip],
        ["admin.federation_changed"],
    )
    target: Record = {
        "id": None,
        "displayName": domain,
        "type": "Domain",
        "modifiedProperties": [
            changed("LiveType", "Managed", "Federated"),
            changed("IssuerUri", None, "http://any.sts.example/adfs/services/trust"),
        ],
        "administrativeUnits": [],
    }
    change = Audit(
        "Set domain authentication",
        "DirectoryManagement",
        "Core Directory",
        "Update",
        target,
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start, change))
    return plant


def conditional_access_disabled(ctx: Context, start: datetime) -> Planted:
    """The conditional access policy requiring MFA for administrators is switched off."""
    actor = victim(ctx, admin=True)
    _, ip, _ = hostile(ctx)
    policy_id, name, _ = ctx.tenant.ca_policies[0]
    plant = Planted(
        "conditional-access-disabled",
        f"{actor.upn} disabled conditional access policy '{name}' from {ip}",
        start,
        actor.upn,
        [ip],
        ["admin.conditional_access_disabled"],
    )
    policy = {"id": policy_id, "displayName": name, "state": "disabled"}
    target: Record = {
        "id": policy_id,
        "displayName": name,
        "type": "Policy",
        "modifiedProperties": [
            changed("ConditionalAccessPolicy", {**policy, "state": "enabled"}, policy),
        ],
        "administrativeUnits": [],
    }
    change = Audit(
        "Update conditional access policy",
        "Policy",
        "Conditional Access",
        "Update",
        target,
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start, change))
    return plant


def guest_promoted(ctx: Context, start: datetime) -> Planted:
    """An outside account is invited as a guest, then turned into a member of the tenant."""
    rng = ctx.rng
    actor = victim(ctx, admin=True)
    home = actor.home
    guest = User(
        new_id(rng),
        f"support_helpdesk-example.net#EXT#@{ctx.tenant.domain}",
        "IT Support",
        home,
        (),
        "",
        guest=True,
    )
    ip = ctx.tenant.office_ip
    plant = Planted(
        "guest-promoted",
        f"{actor.upn} invited guest {guest.upn}, then changed it to a member",
        start,
        guest.upn,
        [ip],
        ["admin.guest_promoted"],
    )
    invite = Audit(
        "Invite external user",
        "UserManagement",
        "Invited Users",
        "Add",
        user_target(guest, []),
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start, invite))
    promote = Audit(
        "Update user",
        "UserManagement",
        "Core Directory",
        "Update",
        user_target(guest, [changed("UserType", "Guest", "Member")]),
        actor=actor,
        actor_ip=ip,
    )
    plant.drafts.append(directory.audit(ctx, start + timedelta(minutes=20), promote))
    return plant
