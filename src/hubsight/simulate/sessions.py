"""Where each person is today and the sign-in session each of their devices is in.

Entra ID writes one ``sessionId`` for every sign-in of one browser or device session: the
interactive sign-in that opens it and the token refreshes that follow carry the same ID. A
device's session here lasts one local day (from ``DAY_STARTS`` o'clock), so a day's sign-ins of
one device share an ID, and a new one starts the next morning. A person is at the office or at
home for the whole working day and at home before and after it, so one session shows at most
two addresses (office and home, hours apart): only a stolen session is used from three.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hubsight.simulate.tenant import Device, User, new_id

if TYPE_CHECKING:  # the context holds the sessions
    from hubsight.simulate.draft import Context

# A device's session runs from this local hour to the same hour the next day.
DAY_STARTS = 4
# Office hours, local: a person who goes to the office that day signs in from it between these.
_OFFICE_HOURS = (8, 18)
# Share of headquarters staff in the office on a working day (the rest work from home).
_OFFICE_SHARE = 0.5
# Without a successful sign-in this recent, a scenario's victim is given a normal one first.
HISTORY = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Place:
    """The session a sign-in continues and the address it comes from."""

    session_id: str
    ip: str
    asn: int


@dataclass(slots=True)
class _Day:
    """One person's local day: home address, whether they go to the office, device sessions."""

    day: int
    home_ip: str
    home_asn: int
    office: bool
    sessions: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Sessions:
    """Every person's current day and last successful sign-in, for one run."""

    days: dict[str, _Day] = field(default_factory=dict)
    last_success: dict[str, datetime] = field(default_factory=dict)

    def place(self, ctx: Context, user: User, device: Device, when: datetime) -> Place:
        """The session ``user``'s ``device`` is in at ``when`` and the address it signs in from."""
        local = when + timedelta(hours=user.home.utc_offset)
        day = (local - timedelta(hours=DAY_STARTS)).date().toordinal()
        today = self.days.get(user.object_id)
        if today is None or today.day != day:
            rng = ctx.rng
            ip, asn = user.home.ip_and_asn(rng)
            # Only headquarters has an office (and its trusted address); weekends are at home.
            office = (
                user.home is ctx.tenant.headquarters
                and local.weekday() < 5
                and rng.random() < _OFFICE_SHARE
            )
            today = self.days[user.object_id] = _Day(day, ip, asn, office)
        session = today.sessions.get(device.device_id)
        if session is None:
            session = today.sessions[device.device_id] = new_id(ctx.rng)
        if today.office and _OFFICE_HOURS[0] <= local.hour < _OFFICE_HOURS[1]:
            # Deutsche Telekom announces the office line, as it does the staff's home lines.
            return Place(session, ctx.tenant.office_ip, 3320)
        return Place(session, today.home_ip, today.home_asn)

    def signed_in(self, user: User, when: datetime) -> None:
        """Note a successful sign-in of ``user`` at ``when``."""
        last = self.last_success.get(user.object_id)
        if last is None or when > last:
            self.last_success[user.object_id] = when

    def has_history(self, user: User, before: datetime) -> bool:
        """Whether ``user`` signed in successfully within ``HISTORY`` before ``before``."""
        last = self.last_success.get(user.object_id)
        return last is not None and before - HISTORY <= last < before
