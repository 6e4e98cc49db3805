"""Entra sign-in session IDs: one per user device and local working day, as Entra keeps them."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hubsight.simulate import Simulation
from hubsight.simulate.signins import SESSION_DAY_STARTS, device_session
from hubsight.simulate.tenant import build_tenant

from .runs import Run


def test_a_device_keeps_its_session_for_its_local_day_and_starts_a_new_one_after() -> None:
    tenant = build_tenant(random.Random(3), users=20)
    user = next(u for u in tenant.users if len(u.devices) > 1)
    laptop, phone = user.devices[:2]
    # The local day starts at SESSION_DAY_STARTS o'clock at the user's home.
    start = datetime(2026, 3, 2, SESSION_DAY_STARTS, tzinfo=UTC) - timedelta(
        hours=user.home.utc_offset
    )
    session = device_session(user, laptop, start)
    assert device_session(user, laptop, start + timedelta(hours=9)) == session
    assert device_session(user, laptop, start + timedelta(days=1, seconds=-1)) == session
    assert device_session(user, laptop, start + timedelta(days=1)).session_id != session.session_id
    assert device_session(user, laptop, start - timedelta(seconds=1)).session_id != (
        session.session_id
    )
    assert device_session(user, phone, start).session_id != session.session_id
    other = next(u for u in tenant.users if u is not user)
    assert device_session(other, other.devices[0], start).session_id != session.session_id
    assert device_session(user, laptop, start) == session


def test_sessions_are_one_users_for_a_day_and_only_a_stolen_one_has_three_addresses(
    day: Run,
) -> None:
    sessions: dict[str, list[tuple[str, datetime, str]]] = defaultdict(list)
    sign_ins = 0
    for record in day.records():
        if record.get("category") in ("SignInLogs", "NonInteractiveUserSignInLogs"):
            props = record["properties"]
            created = datetime.fromisoformat(props["createdDateTime"])
            sessions[props["sessionId"]].append((props["userId"], created, props["ipAddress"]))
            sign_ins += 1
    for uses in sessions.values():
        assert len({user for user, _, _ in uses}) == 1
        times = [when for _, when, _ in uses]
        assert max(times) - min(times) < timedelta(days=1)
    # Every device's sign-ins continue its session: at most two local days touch one UTC day.
    # Attackers' devices (unknown to the tenant) start a session with each sign-in.
    devices = sum(len(u.devices) for u in Simulation(day.config).tenant.users)
    continued = [uses for uses in sessions.values() if len(uses) > 1]
    assert len(continued) <= 2 * devices
    assert sum(len(uses) for uses in continued) > 0.95 * sign_ins
    # A device is at home or at the office; only the stolen session is used from elsewhere.
    (hijack,) = [t for t in day.truth if t["scenario"] == "session-hijack"]
    many = [s for s, uses in sessions.items() if len({ip for _, _, ip in uses}) >= 3]
    assert len(many) == 1
    assert set(hijack["source_ips"]) <= {ip for _, _, ip in sessions[many[0]]}
