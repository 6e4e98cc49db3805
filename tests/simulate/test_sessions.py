"""Entra sign-in sessions: each device's, ending with the working day, when idle or (kept
overnight) the next day; at most two addresses (office and home) within an hour; and every
scenario's victim with sign-ins of their own before the attack."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from hubsight.simulate import Simulation
from hubsight.simulate.draft import Context
from hubsight.simulate.sessions import HISTORY, IDLE, WORK_ENDS
from hubsight.simulate.tenant import User, build_tenant

from .runs import Run

Uses = list[tuple[str, datetime, str, str]]


def _context(seed: int = 3) -> Context:
    return Context(random.Random(seed), build_tenant(random.Random(seed), users=40))


def _monday(user: User, hour: float) -> datetime:
    """``hour`` o'clock local time at ``user``'s home on a Monday, in UTC."""
    return datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=hour - user.home.utc_offset)


def test_a_session_lasts_until_work_ends_unless_it_is_kept_overnight() -> None:
    kept: dict[bool, list[bool]] = defaultdict(list)
    for seed in range(6):
        ctx = _context(seed)
        for user in ctx.tenant.users:
            # Every device in use every quarter of an hour from 07:00 to midnight, and at 07:00
            # the next day: never idle, so only the end of the day ends a session.
            times = [_monday(user, 7 + q / 4) for q in range(17 * 4)]
            seen: dict[str, list[str]] = defaultdict(list)
            for when in [*times, _monday(user, 24 + 7)]:
                for device in user.devices:
                    seen[device.device_id].append(
                        ctx.sessions.place(ctx, user, device, when).session_id
                    )
            for device in user.devices:
                ids = seen[device.device_id]
                phone = device.operating_system in ("Ios", "Android")
                if ids[-1] == ids[0]:
                    # Kept overnight: the same session all evening and the next morning.
                    assert set(ids) == {ids[0]}, (
                        f"seed {seed}: {device.name} came back to a session"
                    )
                    kept[phone].append(True)
                    continue
                # Otherwise it ends when its person stops for the day.
                ends = next(n for n, id_ in enumerate(ids) if id_ != ids[0])
                local = 7 + ends / 4
                assert WORK_ENDS[0] <= local < WORK_ENDS[1] + 0.25, f"seed {seed}: ended {local}"
                kept[phone].append(False)
    share = {phone: sum(k) / len(k) for phone, k in kept.items()}
    # Phones' apps stay signed in more often than computers' browsers; most sessions end at night.
    assert 0 < share[False] < share[True] < 1


def test_a_session_idle_longer_than_idle_is_over_unless_it_is_kept_overnight() -> None:
    outcomes: list[bool] = []
    for seed in range(4):
        ctx = _context(seed)
        for user in ctx.tenant.users:
            laptop = user.devices[0]
            first = ctx.sessions.place(ctx, user, laptop, _monday(user, 9)).session_id
            # Idle exactly IDLE: still the same session.
            edge = _monday(user, 9) + IDLE
            assert ctx.sessions.place(ctx, user, laptop, edge).session_id == first
            after = ctx.sessions.place(ctx, user, laptop, edge + IDLE + timedelta(seconds=1))
            tomorrow = ctx.sessions.place(ctx, user, laptop, _monday(user, 24 + 7)).session_id
            # Over, or kept overnight and so still open the next morning.
            ended = after.session_id != first
            assert ended != (tomorrow == first), f"seed {seed}: {user.upn}"
            outcomes.append(ended)
    assert 0.7 < sum(outcomes) / len(outcomes) < 1


def test_sign_ins_a_little_out_of_order_continue_one_session() -> None:
    ctx = _context(3)
    user = ctx.tenant.users[0]
    laptop = user.devices[0]
    ten = _monday(user, 10)
    # The simulator draws a step's sign-ins at random moments in it, so they come out of order.
    ids = {
        ctx.sessions.place(ctx, user, laptop, ten + timedelta(seconds=s)).session_id
        for s in (0, -50, 30, -80, 10)
    }
    assert len(ids) == 1
    # A sign-in longer than IDLE before them was in a session of its own.
    early = ten - timedelta(seconds=80) - IDLE - timedelta(seconds=1)
    assert ctx.sessions.place(ctx, user, laptop, early).session_id not in ids


def test_a_persons_devices_have_sessions_of_their_own() -> None:
    ctx = _context(3)
    user = next(u for u in ctx.tenant.users if len(u.devices) > 1)
    laptop, phone = user.devices[:2]
    at = _monday(user, 9)
    assert (
        ctx.sessions.place(ctx, user, laptop, at).session_id
        != ctx.sessions.place(ctx, user, phone, at).session_id
    )


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
        # One session from home into the office until work ends (16:00 at the earliest).
        assert len({p.session_id for p in at[:9]}) == 1
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
    # Interactive sign-ins and token refreshes share the session.
    mixed = [u for u in sessions.values() if len({c for _, _, _, c in u}) == 2]
    assert len(mixed) > 20
    # A device's sign-ins continue its session: a few sessions a device a day (the working day,
    # evenings, the night's after idle gaps), not one a sign-in.
    tenant = Simulation(day.config).tenant
    devices = sum(len(u.devices) for u in tenant.users)
    continued = [uses for uses in sessions.values() if len(uses) > 1]
    assert devices <= len(continued) <= 6 * devices
    assert sum(len(uses) for uses in continued) > 0.9 * sign_ins


def test_sessions_end_when_people_stop_work_not_at_one_hour(day: Run) -> None:
    sessions, _ = _sessions(day)
    offsets = {u.object_id: u.home.utc_offset for u in Simulation(day.config).tenant.users}
    # Sessions with sign-ins in the day's last hours may go on after it.
    assert day.config.start is not None
    assert day.config.duration is not None
    over = day.config.start + day.config.duration - timedelta(hours=3)
    last: Counter[int] = Counter()
    for uses in sessions.values():
        user, ended, _, _ = max(uses, key=lambda use: use[1])
        if len(uses) > 1 and user in offsets and ended < over:
            last[int((ended + timedelta(hours=offsets[user])).hour)] += 1
    total = sum(last.values())
    # The largest share of sessions ends with the working day (local 16:00-21:00); the others
    # after idle gaps over the evening and night, spread over many hours.
    evening = sum(last[hour] for hour in range(int(WORK_ENDS[0]), int(WORK_ENDS[1]) + 1))
    assert evening > 0.3 * total
    assert max(last.values()) < 0.2 * total
    assert len([hour for hour, count in last.items() if count > 0.02 * total]) >= 8


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
