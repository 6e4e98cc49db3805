"""Entra sign-in sessions: one per user device and local day, at most two addresses (office and
home), and every scenario's victim with sign-ins of their own before the attack."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hubsight.simulate import Simulation
from hubsight.simulate.draft import Context
from hubsight.simulate.sessions import DAY_STARTS, HISTORY
from hubsight.simulate.tenant import build_tenant

from .runs import Run

Uses = list[tuple[str, datetime, str, str]]


def _context() -> Context:
    return Context(random.Random(3), build_tenant(random.Random(3), users=40))


def test_a_device_keeps_its_session_for_its_local_day_and_starts_a_new_one_after() -> None:
    ctx = _context()
    user = next(u for u in ctx.tenant.users if len(u.devices) > 1)
    laptop, phone = user.devices[:2]
    # A Monday's local day starts at DAY_STARTS o'clock at the user's home.
    start = datetime(2026, 3, 2, DAY_STARTS, tzinfo=UTC) - timedelta(hours=user.home.utc_offset)
    first = ctx.sessions.place(ctx, user, laptop, start)
    same = {
        ctx.sessions.place(ctx, user, laptop, start + timedelta(hours=h)).session_id
        for h in (1, 9, 23.9)
    }
    assert same == {first.session_id}
    other_device = ctx.sessions.place(ctx, user, phone, start + timedelta(hours=2))
    assert other_device.session_id != first.session_id
    next_day = ctx.sessions.place(ctx, user, laptop, start + timedelta(days=1))
    assert next_day.session_id != first.session_id


def test_an_office_day_is_the_office_in_office_hours_and_home_around_them() -> None:
    ctx = _context()
    tenant = ctx.tenant
    seen: dict[bool, int] = defaultdict(int)
    for user in (u for u in tenant.users if u.home is tenant.headquarters):
        morning = datetime(2026, 3, 2, 7, 30, tzinfo=UTC) - timedelta(hours=user.home.utc_offset)
        device = user.devices[0]
        at = [
            ctx.sessions.place(ctx, user, device, morning + timedelta(hours=h)) for h in range(12)
        ]
        # 07:30 (home), 08:30 ... 17:30 (office on an office day), 18:30 (home again).
        addresses = [p.ip for p in at]
        office = addresses[1] == tenant.office_ip
        seen[office] += 1
        assert addresses[0] == addresses[-1] != tenant.office_ip
        assert addresses[1:-1] == [tenant.office_ip if office else addresses[0]] * 10
        assert len({p.session_id for p in at}) == 1
    # Some go to the office, some work from home.
    assert seen[True] > 0
    assert seen[False] > 0
    # Staff abroad have no office.
    abroad = next(u for u in tenant.users if u.home is not tenant.headquarters)
    noon = datetime(2026, 3, 2, 12, tzinfo=UTC) - timedelta(hours=abroad.home.utc_offset)
    assert ctx.sessions.place(ctx, abroad, abroad.devices[0], noon).ip != tenant.office_ip


def test_history_is_a_successful_sign_in_within_a_day_before() -> None:
    ctx = _context()
    user = ctx.tenant.users[0]
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert not ctx.sessions.has_history(user, at)
    ctx.sessions.signed_in(user, at - HISTORY)
    assert ctx.sessions.has_history(user, at)
    assert not ctx.sessions.has_history(user, at + timedelta(seconds=1))
    assert not ctx.sessions.has_history(user, at - HISTORY)


def _sessions(day: Run) -> tuple[dict[str, Uses], int]:
    sessions: dict[str, Uses] = defaultdict(list)
    sign_ins = 0
    for record in day.records():
        if record.get("category") in ("SignInLogs", "NonInteractiveUserSignInLogs"):
            props = record["properties"]
            created = datetime.fromisoformat(props["createdDateTime"])
            use = (props["userId"], created, props["ipAddress"], record["category"])
            sessions[props["sessionId"]].append(use)
            sign_ins += 1
    return sessions, sign_ins


def _most_addresses_within_an_hour(uses: Uses) -> int:
    times = sorted((when, ip) for _, when, ip, _ in uses)
    return max(
        len({ip for when, ip in times if start <= when < start + timedelta(hours=1)})
        for start, _ in times
    )


def test_a_days_sign_ins_continue_their_devices_sessions(day: Run) -> None:
    sessions, sign_ins = _sessions(day)
    for uses in sessions.values():
        assert len({user for user, _, _, _ in uses}) == 1
        times = [when for _, when, _, _ in uses]
        assert max(times) - min(times) < timedelta(days=1)
    # Interactive sign-ins and token refreshes share the session.
    mixed = [u for u in sessions.values() if len({c for _, _, _, c in u}) == 2]
    assert len(mixed) > 20
    # A device's sign-ins continue its session: at most two local days touch one UTC day.
    # Attackers' devices (unknown to the tenant) start a session with each sign-in.
    devices = sum(len(u.devices) for u in Simulation(day.config).tenant.users)
    continued = [uses for uses in sessions.values() if len(uses) > 1]
    assert len(continued) <= 2 * devices
    assert sum(len(uses) for uses in continued) > 0.9 * sign_ins


def test_only_the_stolen_session_is_used_from_three_addresses_within_an_hour(day: Run) -> None:
    sessions, _ = _sessions(day)
    (theft,) = [t for t in day.truth if t["scenario"] == "token-theft"]
    many = [s for s, uses in sessions.items() if _most_addresses_within_an_hour(uses) >= 3]
    assert len(many) == 1
    assert {ip for _, _, ip, _ in sessions[many[0]]} == set(theft["source_ips"])


def test_every_victim_signed_in_normally_before_the_attack(day: Run) -> None:
    tenant = Simulation(day.config).tenant
    active = {u.upn: u.object_id for u in tenant.users if not u.disabled}
    own: dict[str, list[datetime]] = defaultdict(list)
    for record in day.records():
        if record.get("category") in ("SignInLogs", "NonInteractiveUserSignInLogs"):
            props = record["properties"]
            if props["status"]["errorCode"] == 0 and props["deviceDetail"]["operatingSystem"]:
                own[props["userId"]].append(datetime.fromisoformat(props["createdDateTime"]))
    victims = [t for t in day.truth if t["user"] in active]
    assert len(victims) > 20
    for truth in victims:
        start = datetime.fromisoformat(truth["start"])
        before = [w for w in own[active[truth["user"]]] if start - HISTORY <= w < start]
        assert before, f"{truth['scenario']}'s victim {truth['user']} has no sign-in before it"
