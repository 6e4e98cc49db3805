"""Attack (and sample) scenarios planted into the background, each with its ground truth.

A scenario is a function from the run's context and a start time to the records it causes. Its
``expect`` list names the ids of the hubsight detection rules it should fire (empty for the seed
document's sample events, which are not attacks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hubsight.simulate import activity, directory, signins
from hubsight.simulate.directory import ROLE_TEMPLATES, Audit, app_target, changed, user_target
from hubsight.simulate.draft import Context, Draft
from hubsight.simulate.geo import HOSTILE_CITIES, City, tor_ip
from hubsight.simulate.tenant import USER_APPS, User, new_id

_ATTACK_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
_SPRAY_AGENT = "BAV2ROPC"
_OFFICE = USER_APPS[1]


@dataclass(slots=True)
class Planted:
    """One planted scenario: what happened, to whom, from where, and its records."""

    name: str
    description: str
    start: datetime
    user: str | None
    source_ips: list[str]
    expect: list[str]
    drafts: list[Draft] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        """The event time of the scenario's last record."""
        return max(d.event_time for d in self.drafts)


def _victim(ctx: Context, *, admin: bool = False) -> User:
    pool = [u for u in ctx.tenant.users if not u.disabled and not u.guest]
    if admin:
        pool = [u for u in pool if u.admin_roles] or pool
    else:
        pool = [u for u in pool if not u.admin_roles] or pool
    return ctx.rng.choice(pool)


def _hostile(ctx: Context) -> tuple[City, str, int]:
    city = ctx.rng.choice(HOSTILE_CITIES)
    ip, asn = city.ip_and_asn(ctx.rng)
    return city, ip, asn


def _attempt(
    user: User, city: City, ip: str, asn: int, code: int, *, mfa: bool = False
) -> signins.SignIn:
    return signins.SignIn(
        user=user,
        city=city,
        ip=ip,
        asn=asn,
        device=None,
        app=_OFFICE,
        code=code,
        mfa=mfa,
        user_agent=_ATTACK_AGENT,
    )


def brute_force(ctx: Context, start: datetime) -> Planted:
    """Many wrong passwords for one account from one address, then a success."""
    rng = ctx.rng
    user = _victim(ctx)
    city, ip, asn = _hostile(ctx)
    failures = rng.randint(12, 25)
    spacing = 480 / failures
    plant = Planted(
        "brute-force",
        f"{failures} wrong passwords for {user.upn} from {ip} "
        "within 8 minutes, then a successful sign-in",
        start,
        user.upn,
        [ip],
        ["auth.brute_force", "auth.brute_force_success", "auth.new_country"],
    )
    for n in range(failures):
        when = start + timedelta(seconds=n * spacing + rng.uniform(0, spacing / 2))
        plant.drafts.append(signins.user_sign_in(ctx, when, _attempt(user, city, ip, asn, 50126)))
    when = start + timedelta(seconds=failures * spacing + 30)
    plant.drafts.append(signins.user_sign_in(ctx, when, _attempt(user, city, ip, asn, 0)))
    return plant


def password_spray(ctx: Context, start: datetime) -> Planted:
    """One address trying one password against many accounts over legacy authentication."""
    rng = ctx.rng
    city, ip, asn = _hostile(ctx)
    pool = [u for u in ctx.tenant.users if not u.disabled]
    targets = rng.sample(pool, min(len(pool), rng.randint(20, 30)))
    ghosts = [
        User("", f"{name}@{ctx.tenant.domain}", "", city, (), "")
        for name in ("admin", "administrator", "test")
    ]
    plant = Planted(
        "password-spray",
        f"{len(targets) + len(ghosts)} accounts tried from {ip} within 15 minutes",
        start,
        None,
        [ip],
        ["auth.password_spray"],
    )
    for n, user in enumerate([*targets, *ghosts]):
        code = 50034 if not user.object_id else 50053 if n % 11 == 5 else 50126
        when = start + timedelta(seconds=n * 25 + rng.uniform(0, 20))
        attempt = signins.SignIn(
            user=user,
            city=city,
            ip=ip,
            asn=asn,
            device=None,
            app=_OFFICE,
            code=code,
            client_app="Other clients",
            user_agent=_SPRAY_AGENT,
        )
        plant.drafts.append(signins.user_sign_in(ctx, when, attempt))
    return plant


def impossible_travel(ctx: Context, start: datetime) -> Planted:
    """A user signs in at home, then half an hour later from another continent."""
    rng = ctx.rng
    user = _victim(ctx)
    city, ip, asn = _hostile(ctx)
    home_ip, home_asn = user.home.ip_and_asn(rng)
    minutes = rng.randint(20, 40)
    plant = Planted(
        "impossible-travel",
        f"{user.upn} signed in from {user.home.city} "
        f"({home_ip}) and {minutes} minutes later from {city.city} ({ip})",
        start,
        user.upn,
        [home_ip, ip],
        ["auth.impossible_travel", "auth.new_country"],
    )
    device = user.devices[0]
    home = signins.SignIn(
        user=user,
        city=user.home,
        ip=home_ip,
        asn=home_asn,
        device=device,
        app=rng.choice(USER_APPS),
        mfa=True,
    )
    plant.drafts.append(signins.user_sign_in(ctx, start, home))
    away_time = start + timedelta(minutes=minutes)
    plant.drafts.append(signins.user_sign_in(ctx, away_time, _attempt(user, city, ip, asn, 0)))
    for n in range(3):
        later_use = signins.SignIn(
            user=user,
            city=city,
            ip=ip,
            asn=asn,
            device=None,
            app=_OFFICE,
            interactive=False,
            user_agent=_ATTACK_AGENT,
            client_app="Mobile Apps and Desktop clients",
        )
        plant.drafts.append(
            signins.user_sign_in(ctx, away_time + timedelta(minutes=2 + n * 3), later_use)
        )
    return plant


def mfa_fatigue(ctx: Context, start: datetime) -> Planted:
    """An attacker with the password pushes MFA prompts until the user gives in."""
    rng = ctx.rng
    user = _victim(ctx)
    city, ip, asn = _hostile(ctx)
    pushes = rng.randint(6, 9)
    plant = Planted(
        "mfa-fatigue",
        f"{pushes} MFA prompts denied by {user.upn} within 9 minutes "
        f"for sign-ins from {ip}, then one approved",
        start,
        user.upn,
        [ip],
        ["auth.mfa_fatigue", "auth.mfa_fatigue_success", "auth.new_country"],
    )
    for n in range(pushes):
        asked = start + timedelta(seconds=n * 60 + rng.uniform(0, 10))
        plant.drafts.append(signins.user_sign_in(ctx, asked, _attempt(user, city, ip, asn, 50074)))
        denied = asked + timedelta(seconds=rng.uniform(15, 45))
        plant.drafts.append(
            signins.user_sign_in(ctx, denied, _attempt(user, city, ip, asn, 500121))
        )
    approved = start + timedelta(seconds=pushes * 60 + 20)
    plant.drafts.append(
        signins.user_sign_in(ctx, approved, _attempt(user, city, ip, asn, 0, mfa=True))
    )
    return plant


def disabled_account(ctx: Context, start: datetime) -> Planted:
    """Someone keeps trying an account that an administrator disabled."""
    rng = ctx.rng
    disabled = [u for u in ctx.tenant.users if u.disabled] or list(ctx.tenant.users)
    user = rng.choice(disabled)
    city, ip, asn = _hostile(ctx)
    tries = rng.randint(3, 5)
    plant = Planted(
        "disabled-account-signin",
        f"{tries} sign-ins to disabled account {user.upn} from {ip}",
        start,
        user.upn,
        [ip],
        ["auth.disabled_account"],
    )
    for n in range(tries):
        when = start + timedelta(seconds=n * 70 + rng.uniform(0, 30))
        plant.drafts.append(signins.user_sign_in(ctx, when, _attempt(user, city, ip, asn, 50057)))
    return plant


def privileged_role_grant(ctx: Context, start: datetime) -> Planted:
    """An administrator makes an ordinary user Global Administrator."""
    rng = ctx.rng
    actor = _victim(ctx, admin=True)
    target = _victim(ctx)
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
    actor = _victim(ctx, admin=True)
    app = rng.choice(ctx.tenant.service_principals)
    _, ip, _ = _hostile(ctx)
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


def _arm_attack(
    ctx: Context,
    start: datetime,
    name: str,
    expect: list[str],
    actions: list[tuple[str, str]],
    text: str,
    *,
    hostile: bool = True,
) -> Planted:
    actor = _victim(ctx, admin=True)
    ip = _hostile(ctx)[1] if hostile else ctx.tenant.office_ip
    plant = Planted(name, f"{actor.upn} {text} from {ip}", start, actor.upn, [ip], expect)
    for n, (action, scope) in enumerate(actions):
        op = activity.Operation(action, scope, actor, ip, role="Owner")
        plant.drafts.extend(activity.administrative(ctx, start + timedelta(seconds=40 * n), op))
    return plant


def diagnostic_setting_deleted(ctx: Context, start: datetime) -> Planted:
    """The diagnostic setting that streams logs to the SIEM is deleted (log tampering)."""
    sub = ctx.tenant.subscriptions[0]
    scope = f"/subscriptions/{sub}/providers/microsoft.insights/diagnosticSettings/send-to-siem"
    return _arm_attack(
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
    return _arm_attack(
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
    plant = _arm_attack(
        ctx,
        start,
        "vm-start-stop",
        [],
        [
            ("Microsoft.Compute/virtualMachines/start/action", vm),
        ],
        "started and stopped a virtual machine",
        hostile=False,
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
    return _arm_attack(
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
    user = _victim(ctx)
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


SCENARIOS: dict[str, Callable[[Context, datetime], Planted]] = {
    "brute-force": brute_force,
    "password-spray": password_spray,
    "impossible-travel": impossible_travel,
    "mfa-fatigue": mfa_fatigue,
    "disabled-account-signin": disabled_account,
    "privileged-role-grant": privileged_role_grant,
    "new-app-credential": new_app_credential,
    "diagnostic-setting-deleted": diagnostic_setting_deleted,
    "eventhub-deleted": eventhub_deleted,
    "defender-alert": defender_alert,
    "vm-start-stop": vm_start_stop,
    "list-keys": list_keys,
}
