"""What every scenario shares: the planted records, and how victims and attackers are chosen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hubsight.simulate import activity, signins
from hubsight.simulate.draft import Context, Draft, Record
from hubsight.simulate.geo import HOSTILE_CITIES, City
from hubsight.simulate.tenant import USER_APPS, User

# A victim without sign-ins of their own in the last day signs in this long before the attack.
_PRIMED_MINUTES = (40.0, 120.0)

ATTACK_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
OFFICE_APP = USER_APPS[1]


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


def victim(ctx: Context, *, admin: bool = False) -> User:
    """An active member account: an administrator, or an ordinary user."""
    pool = [u for u in ctx.tenant.users if not u.disabled and not u.guest]
    if admin:
        pool = [u for u in pool if u.admin_roles] or pool
    else:
        pool = [u for u in pool if not u.admin_roles] or pool
    return ctx.rng.choice(pool)


def hostile(ctx: Context) -> tuple[City, str, int]:
    """An attacker's city, address and autonomous system, far from every home city."""
    city = ctx.rng.choice(HOSTILE_CITIES)
    ip, asn = city.ip_and_asn(ctx.rng)
    return city, ip, asn


def attempt(
    user: User,
    city: City,
    ip: str,
    asn: int,
    code: int,
    *,
    mfa: bool = False,
    client_app: str = "Browser",
    protocol: str | None = None,
    risk_level: str = "none",
    risk_events: tuple[str, ...] = (),
    user_agent: str = ATTACK_AGENT,
    session: str | None = None,
    interactive: bool = True,
) -> signins.SignIn:
    """An attacker's sign-in for ``user`` from ``ip``, ending with error ``code``."""
    return signins.SignIn(
        user=user,
        city=city,
        ip=ip,
        asn=asn,
        device=None,
        app=OFFICE_APP,
        code=code,
        interactive=interactive,
        mfa=mfa,
        client_app=client_app,
        user_agent=user_agent,
        risk_level=risk_level,
        risk_events=risk_events,
        protocol=protocol,
        session=session,
    )


def token_use(
    user: User, city: City, ip: str, asn: int, session: str | None = None
) -> signins.SignIn:
    """An attacker refreshing ``user``'s token from ``ip`` (in a stolen ``session``)."""
    desktop = "Mobile Apps and Desktop clients"
    return attempt(user, city, ip, asn, 0, client_app=desktop, interactive=False, session=session)


def arm_attack(
    ctx: Context,
    start: datetime,
    name: str,
    expect: list[str],
    actions: list[tuple[str, str]],
    text: str,
    *,
    from_office: bool = False,
    body: Record | None = None,
) -> Planted:
    """An administrator runs ARM ``actions`` (with request ``body``) 40 s apart, from a hostile
    address unless ``from_office``."""
    actor = victim(ctx, admin=True)
    ip = ctx.tenant.office_ip if from_office else hostile(ctx)[1]
    plant = Planted(name, f"{actor.upn} {text} from {ip}", start, actor.upn, [ip], expect)
    for n, (action, scope) in enumerate(actions):
        op = activity.Operation(action, scope, actor, ip, role="Owner", extra=body or {})
        plant.drafts.extend(activity.administrative(ctx, start + timedelta(seconds=40 * n), op))
    return plant


def prime(ctx: Context, plant: Planted) -> list[Draft]:
    """The victim's own morning before the attack, when they have not signed in for a day: an
    interactive sign-in on their first device and a few token refreshes in that session.

    Attacks hit people who use the tenant: without a sign-in of their own, a baseline rule
    (``auth.new_country``) rightly sees a user with no history, not a traveller. Background
    records, not the scenario's: they are not in its ground truth."""
    users: dict[str, User] | None = ctx.parts.get("users by upn")
    if users is None:
        users = ctx.parts["users by upn"] = {u.upn: u for u in ctx.tenant.users}
    user = users.get(plant.user or "")
    if user is None or user.disabled or ctx.sessions.has_history(user, plant.start):
        return []
    rng = ctx.rng
    device = user.devices[0]
    opened = plant.start - timedelta(minutes=rng.uniform(*_PRIMED_MINUTES))
    drafts = [
        signins.user_sign_in(ctx, opened, signins.own_sign_in(ctx, user, device, opened, True))
    ]
    for n in range(rng.randint(1, 3)):
        when = opened + timedelta(minutes=10 * (n + 1) + rng.uniform(0, 8))
        refresh = signins.own_sign_in(ctx, user, device, when, False)
        drafts.append(signins.user_sign_in(ctx, when, refresh))
    return drafts
