"""Attack (and sample) scenarios planted into the background, each with its ground truth.

A scenario is a function from the run's context and a start time to the records it causes. Its
``expect`` list names the ids of the hubsight detection rules it should fire (empty for the seed
document's sample events, which are not attacks).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from hubsight.simulate import control_scenarios as control
from hubsight.simulate import signins
from hubsight.simulate.draft import Context
from hubsight.simulate.planting import ATTACK_AGENT, OFFICE_APP, Planted, attempt, hostile, victim
from hubsight.simulate.tenant import USER_APPS, User

_SPRAY_AGENT = "BAV2ROPC"


def brute_force(ctx: Context, start: datetime) -> Planted:
    """Many wrong passwords for one account from one address, then a success."""
    rng = ctx.rng
    user = victim(ctx)
    city, ip, asn = hostile(ctx)
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
        plant.drafts.append(signins.user_sign_in(ctx, when, attempt(user, city, ip, asn, 50126)))
    when = start + timedelta(seconds=failures * spacing + 30)
    plant.drafts.append(signins.user_sign_in(ctx, when, attempt(user, city, ip, asn, 0)))
    return plant


def password_spray(ctx: Context, start: datetime) -> Planted:
    """One address trying one password against many accounts over legacy authentication."""
    rng = ctx.rng
    city, ip, asn = hostile(ctx)
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
            app=OFFICE_APP,
            code=code,
            client_app="Other clients",
            user_agent=_SPRAY_AGENT,
        )
        plant.drafts.append(signins.user_sign_in(ctx, when, attempt))
    return plant


def impossible_travel(ctx: Context, start: datetime) -> Planted:
    """A user signs in at home, then half an hour later from another continent."""
    rng = ctx.rng
    user = victim(ctx)
    city, ip, asn = hostile(ctx)
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
    plant.drafts.append(signins.user_sign_in(ctx, away_time, attempt(user, city, ip, asn, 0)))
    for n in range(3):
        later_use = signins.SignIn(
            user=user,
            city=city,
            ip=ip,
            asn=asn,
            device=None,
            app=OFFICE_APP,
            interactive=False,
            user_agent=ATTACK_AGENT,
            client_app="Mobile Apps and Desktop clients",
        )
        plant.drafts.append(
            signins.user_sign_in(ctx, away_time + timedelta(minutes=2 + n * 3), later_use)
        )
    return plant


def mfa_fatigue(ctx: Context, start: datetime) -> Planted:
    """An attacker with the password pushes MFA prompts until the user gives in."""
    rng = ctx.rng
    user = victim(ctx)
    city, ip, asn = hostile(ctx)
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
        plant.drafts.append(signins.user_sign_in(ctx, asked, attempt(user, city, ip, asn, 50074)))
        denied = asked + timedelta(seconds=rng.uniform(15, 45))
        plant.drafts.append(signins.user_sign_in(ctx, denied, attempt(user, city, ip, asn, 500121)))
    approved = start + timedelta(seconds=pushes * 60 + 20)
    plant.drafts.append(
        signins.user_sign_in(ctx, approved, attempt(user, city, ip, asn, 0, mfa=True))
    )
    return plant


def disabled_account(ctx: Context, start: datetime) -> Planted:
    """Someone keeps trying an account that an administrator disabled."""
    rng = ctx.rng
    disabled = [u for u in ctx.tenant.users if u.disabled] or list(ctx.tenant.users)
    user = rng.choice(disabled)
    city, ip, asn = hostile(ctx)
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
        plant.drafts.append(signins.user_sign_in(ctx, when, attempt(user, city, ip, asn, 50057)))
    return plant


SCENARIOS: dict[str, Callable[[Context, datetime], Planted]] = {
    "brute-force": brute_force,
    "password-spray": password_spray,
    "impossible-travel": impossible_travel,
    "mfa-fatigue": mfa_fatigue,
    "disabled-account-signin": disabled_account,
    "privileged-role-grant": control.privileged_role_grant,
    "new-app-credential": control.new_app_credential,
    "diagnostic-setting-deleted": control.diagnostic_setting_deleted,
    "eventhub-deleted": control.eventhub_deleted,
    "defender-alert": control.defender_alert,
    "vm-start-stop": control.vm_start_stop,
    "list-keys": control.list_keys,
}
