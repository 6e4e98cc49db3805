"""Attack (and sample) scenarios planted into the background, each with its ground truth.

A scenario is a function from the run's context and a start time to the records it causes. Its
``expect`` list names the ids of the hubsight detection rules it should fire (empty for the seed
document's sample events, which are not attacks).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from hubsight.simulate import content_scenarios as content
from hubsight.simulate import control_scenarios as control
from hubsight.simulate import directory, signins
from hubsight.simulate import directory_scenarios as directory_attacks
from hubsight.simulate.draft import Context
from hubsight.simulate.geo import TOR_CITY, TOR_EXITS, City, tor_ip
from hubsight.simulate.planting import (
    OFFICE_APP,
    Planted,
    attempt,
    hostile,
    token_use,
    victim,
)
from hubsight.simulate.tenant import USER_APPS, User, new_id

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
    device = user.devices[0]
    # The victim's own device, in its session of the day and from where they are today.
    place = ctx.sessions.place(ctx, user, device, start)
    home_ip, home_asn = place.ip, place.asn
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
    home = signins.SignIn(
        user=user,
        city=user.home,
        ip=home_ip,
        asn=home_asn,
        device=device,
        app=rng.choice(USER_APPS),
        mfa=True,
        session=place.session_id,
    )
    plant.drafts.append(signins.user_sign_in(ctx, start, home))
    away_time = start + timedelta(minutes=minutes)
    plant.drafts.append(signins.user_sign_in(ctx, away_time, attempt(user, city, ip, asn, 0)))
    for n in range(3):
        later_use = token_use(user, city, ip, asn)
        plant.drafts.append(
            signins.user_sign_in(ctx, away_time + timedelta(minutes=2 + n * 3), later_use)
        )
    return plant


def token_theft(ctx: Context, start: datetime) -> Planted:
    """Adversary-in-the-middle phishing: the user signs in (password and MFA) through the
    attacker's reverse proxy, which keeps the session cookie it was given and replays it from
    two more of the attacker's addresses within the hour."""
    rng = ctx.rng
    user = victim(ctx)
    proxy_city, proxy_ip, proxy_asn = hostile(ctx)
    replays = [hostile(ctx) for _ in range(2)]
    # The session Entra opened for the proxy's sign-in: the cookie the attacker now holds.
    session = new_id(rng)
    addresses = [proxy_ip, *(ip for _, ip, _ in replays)]
    plant = Planted(
        "token-theft",
        f"{user.upn} signed in through a phishing proxy at {proxy_ip}; the stolen session was "
        f"replayed from {addresses[1]} and {addresses[2]} within the hour",
        start,
        user.upn,
        addresses,
        ["entra.session_many_addresses", "auth.new_country"],
    )
    # The proxy relays the victim's own browser's user agent.
    agent = user.devices[0].user_agent
    phished = attempt(
        user, proxy_city, proxy_ip, proxy_asn, 0, mfa=True, user_agent=agent, session=session
    )
    plant.drafts.append(signins.user_sign_in(ctx, start, phished))
    for n, (city, ip, asn) in enumerate(replays):
        when = start + timedelta(minutes=8 + 20 * n + rng.uniform(0, 10))
        for refresh in range(rng.randint(1, 3)):
            replay = token_use(user, city, ip, asn, session)
            at = when + timedelta(minutes=4 * refresh)
            plant.drafts.append(signins.user_sign_in(ctx, at, replay))
    return plant


def mfa_fatigue(ctx: Context, start: datetime) -> Planted:
    """An attacker with the password pushes MFA prompts until the user gives in."""
    rng = ctx.rng
    user = victim(ctx)
    city, ip, asn = hostile(ctx)
    pushes = rng.randint(6, 9)
    plant = Planted(
        "mfa-fatigue",
        f"{pushes} MFA prompts denied by {user.upn} within 10 minutes "
        f"for sign-ins from {ip}, then one approved",
        start,
        user.upn,
        [ip],
        ["auth.mfa_fatigue", "auth.mfa_fatigue_success", "auth.new_country"],
    )
    # Each push is one sign-in flow: MFA required (50074), then denied (500121); the last one
    # approved.
    for n in range(pushes):
        asked = start + timedelta(seconds=n * 60 + rng.uniform(0, 10))
        denied = attempt(user, city, ip, asn, 500121)
        plant.drafts.extend(signins.sign_in_flow(ctx, asked, denied, (50074, 500121)))
    approved = start + timedelta(seconds=pushes * 60 + 20)
    success = attempt(user, city, ip, asn, 0, mfa=True)
    plant.drafts.extend(signins.sign_in_flow(ctx, approved, success, (50074, 0)))
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


def distributed_cracking(ctx: Context, start: datetime) -> Planted:
    """One account guessed at from many addresses, a few tries each, over most of an hour."""
    rng = ctx.rng
    user = victim(ctx)
    sources = [hostile(ctx) for _ in range(rng.randint(6, 8))]
    plant = Planted(
        "distributed-cracking",
        f"wrong passwords for {user.upn} from {len(sources)} addresses within 50 minutes",
        start,
        user.upn,
        [ip for _, ip, _ in sources],
        ["auth.distributed_cracking"],
    )
    for n, (city, ip, asn) in enumerate(sources):
        for attempt_number in range(rng.randint(1, 2)):
            when = start + timedelta(minutes=n * 6 + attempt_number * 3, seconds=rng.uniform(0, 60))
            plant.drafts.append(
                signins.user_sign_in(ctx, when, attempt(user, city, ip, asn, 50126))
            )
    return plant


def lockout_storm(ctx: Context, start: datetime) -> Planted:
    """Smart lockout trips for many accounts within the hour: a slow, spread-out spray."""
    rng = ctx.rng
    pool = [u for u in ctx.tenant.users if not u.disabled]
    users = rng.sample(pool, min(len(pool), rng.randint(16, 20)))
    sources = [hostile(ctx) for _ in range(6)]
    plant = Planted(
        "lockout-storm",
        f"{len(users)} accounts locked out (50053) within 45 minutes from {len(sources)} addresses",
        start,
        None,
        [ip for _, ip, _ in sources],
        ["auth.lockout_storm"],
    )
    for n, user in enumerate(users):
        city, ip, asn = sources[n % len(sources)]
        when = start + timedelta(seconds=n * 150 + rng.uniform(0, 60))
        plant.drafts.append(signins.user_sign_in(ctx, when, attempt(user, city, ip, asn, 50053)))
    return plant


def _single_success(
    ctx: Context,
    start: datetime,
    name: str,
    text: str,
    expect: list[str],
    *,
    client_app: str = "Browser",
    protocol: str | None = None,
    risk: tuple[str, str] | None = None,
) -> Planted:
    city, ip, asn = hostile(ctx)
    user = victim(ctx)
    plant = Planted(name, f"{user.upn} {text} from {ip}", start, user.upn, [ip], expect)
    kind, level = risk or ("", "none")
    sign_in = attempt(
        user,
        city,
        ip,
        asn,
        0,
        client_app=client_app,
        protocol=protocol,
        risk_level=level,
        risk_events=(kind,) if risk else (),
    )
    plant.drafts.append(signins.user_sign_in(ctx, start, sign_in))
    if risk:
        _add_risk_detection(ctx, plant, user, city, kind, level)
    return plant


def legacy_protocol(ctx: Context, start: datetime) -> Planted:
    """A successful sign-in over IMAP, which no MFA policy can protect."""
    return _single_success(
        ctx,
        start,
        "legacy-protocol",
        "signed in over IMAP4",
        ["auth.legacy_protocol", "auth.new_country"],
        client_app="IMAP4",
    )


def device_code_phish(ctx: Context, start: datetime) -> Planted:
    """A user enters an attacker's device code: the attacker's device receives the tokens."""
    return _single_success(
        ctx,
        start,
        "device-code-phish",
        "completed a device-code sign-in started",
        ["auth.unusual_flow", "auth.new_country"],
        client_app="Mobile Apps and Desktop clients",
        protocol="deviceCode",
    )


def risky_signin(ctx: Context, start: datetime) -> Planted:
    """ID Protection rates a successful sign-in high risk; its detection follows."""
    return _single_success(
        ctx,
        start,
        "risky-signin",
        "signed in (rated high risk by ID Protection)",
        ["auth.risky_signin", "auth.new_country", "thirdparty.vendor_alert"],
        risk=("maliciousIPAddress", "high"),
    )


def tor_signin(ctx: Context, start: datetime) -> Planted:
    """A successful sign-in through a Tor exit relay, which the record flags as anonymized."""
    rng = ctx.rng
    user = victim(ctx)
    ip = tor_ip(rng)
    plant = Planted(
        "tor-signin",
        f"{user.upn} signed in through Tor exit relay {ip}",
        start,
        user.upn,
        [ip],
        ["auth.anonymizer", "thirdparty.vendor_alert"],
    )
    sign_in = attempt(
        user,
        TOR_CITY,
        ip,
        TOR_EXITS[2],
        0,
        risk_level="medium",
        risk_events=("anonymizedIPAddress",),
    )
    plant.drafts.append(signins.user_sign_in(ctx, start, sign_in))
    _add_risk_detection(ctx, plant, user, TOR_CITY, "anonymizedIPAddress", "medium")
    return plant


def _add_risk_detection(
    ctx: Context, plant: Planted, user: User, city: City, kind: str, level: str
) -> None:
    # The detection is about the scenario's sign-in: it names that record's id and correlation.
    when = plant.start + timedelta(seconds=30)
    ip = plant.source_ips[0]
    sign_in = plant.drafts[0]
    plant.drafts.append(directory.risk_detection(ctx, when, user, kind, level, ip, city, sign_in))
    plant.drafts.append(directory.risky_user(ctx, when, user, level))


SCENARIOS: dict[str, Callable[[Context, datetime], Planted]] = {
    "brute-force": brute_force,
    "password-spray": password_spray,
    "impossible-travel": impossible_travel,
    "token-theft": token_theft,
    "mfa-fatigue": mfa_fatigue,
    "disabled-account-signin": disabled_account,
    "privileged-role-grant": directory_attacks.privileged_role_grant,
    "new-app-credential": directory_attacks.new_app_credential,
    "diagnostic-setting-deleted": control.diagnostic_setting_deleted,
    "eventhub-deleted": control.eventhub_deleted,
    "defender-alert": control.defender_alert,
    "vm-start-stop": control.vm_start_stop,
    "list-keys": control.list_keys,
    "distributed-cracking": distributed_cracking,
    "lockout-storm": lockout_storm,
    "legacy-protocol": legacy_protocol,
    "device-code-phish": device_code_phish,
    "risky-signin": risky_signin,
    "tor-signin": tor_signin,
    "privileged-mfa-changed": directory_attacks.privileged_mfa_changed,
    "privileged-group-member": directory_attacks.privileged_group_member,
    "high-privilege-consent": directory_attacks.high_privilege_consent,
    "federation-changed": directory_attacks.federation_changed,
    "conditional-access-disabled": directory_attacks.conditional_access_disabled,
    "guest-promoted": directory_attacks.guest_promoted,
    "rbac-owner-assigned": control.rbac_owner_assigned,
    "keyvault-purge": control.keyvault_purge,
    "storage-keys-listed": control.storage_keys_listed,
    "vm-run-command": control.vm_run_command,
    "resource-group-deleted": control.resource_group_deleted,
    "deletion-burst": control.deletion_burst,
    # One per family of the shipped Sigma content.
    **content.SCENARIOS,
}
