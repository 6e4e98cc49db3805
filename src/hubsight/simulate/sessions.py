"""Where each person is today and the sign-in session each of their devices is in.

Entra ID writes one ``sessionId`` for every sign-in of one browser or device session: the
interactive sign-in that opens it and the token refreshes that follow carry the same ID. Here a
device's session opens with its first sign-in and ends when its person stops for the day (the
end of their working day, drawn per person and day), after ``IDLE`` without a sign-in on the
device (the browser closed, the laptop asleep), or, for a session kept overnight ("Stay signed
in?" answered yes, an always-on phone), at the end of the next working day. A session opened
after work (mail in the evening) lasts a few hours at most. The next sign-in opens a new one.

A person is at the office or at home for the whole working day and at home before and after it,
so one session shows at most two addresses within an hour (office and home, or yesterday's and
today's home line at ``DAY_STARTS``): only a stolen session is used from three.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from hubsight.simulate.tenant import Device, User, new_id

if TYPE_CHECKING:  # the context holds the sessions
    from hubsight.simulate.draft import Context

# A person's local day (home address, office or not, when work ends) runs from this local hour
# to the same hour the next day.
DAY_STARTS = 4
# Office hours, local: a person who goes to the office that day signs in from it between these.
_OFFICE_HOURS = (8, 18)
# Share of headquarters staff in the office on a working day (the rest work from home).
_OFFICE_SHARE = 0.5
# When people stop for the day, local hours: earliest, latest, most common.
WORK_ENDS = (16.0, 20.0, 17.5)
# A session without a sign-in this long is over (unless it is kept overnight).
IDLE = timedelta(hours=2)
# Share of sessions kept overnight, on phones (apps stay signed in) and on computers.
_KEPT_OVERNIGHT = {True: 0.6, False: 0.1}
# How long a session opened after work lasts at most, hours.
_EVENING_HOURS = (0.5, 3.0)
# Sessions remembered per device: sign-ins come at most a couple of hours out of order.
_REMEMBERED = 4
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
    """One person's local day: home address, whether they go to the office, when work ends."""

    day: int
    home_ip: str
    home_asn: int
    office: bool
    work_ends: datetime


@dataclass(slots=True)
class _Session:
    """One device session: opened at its first sign-in, over at ``ends`` or when idle."""

    session_id: str
    opened: datetime
    last: datetime
    ends: datetime
    kept: bool

    def takes(self, when: datetime) -> bool:
        """Whether a sign-in at ``when`` (not before ``opened``) continues this session."""
        if when >= self.ends:
            return False
        return self.kept or when <= self.last or when - self.last <= IDLE


@dataclass(slots=True)
class Sessions:
    """Every person's current day, every device's recent sessions, and each person's last
    successful sign-in, for one run."""

    days: dict[str, _Day] = field(default_factory=dict)
    devices: dict[str, list[_Session]] = field(default_factory=dict)
    last_success: dict[str, datetime] = field(default_factory=dict)

    def place(self, ctx: Context, user: User, device: Device, when: datetime) -> Place:
        """The session ``user``'s ``device`` is in at ``when`` and the address it signs in from."""
        offset = timedelta(hours=user.home.utc_offset)
        local = when + offset
        today = self._day(ctx, user, local, offset)
        session = self._session(ctx, device, when, today)
        if today.office and _OFFICE_HOURS[0] <= local.hour < _OFFICE_HOURS[1]:
            # Deutsche Telekom announces the office line, as it does the staff's home lines.
            return Place(session, ctx.tenant.office_ip, 3320)
        return Place(session, today.home_ip, today.home_asn)

    def _day(self, ctx: Context, user: User, local: datetime, offset: timedelta) -> _Day:
        day = (local - timedelta(hours=DAY_STARTS)).date().toordinal()
        today = self.days.get(user.object_id)
        if today is not None and today.day == day:
            return today
        rng = ctx.rng
        ip, asn = user.home.ip_and_asn(rng)
        # Only headquarters has an office (and its trusted address); weekends are at home.
        office = (
            user.home is ctx.tenant.headquarters
            and local.weekday() < 5
            and rng.random() < _OFFICE_SHARE
        )
        midnight = datetime.combine(date.fromordinal(day), time(), tzinfo=UTC) - offset
        ends = midnight + timedelta(hours=rng.triangular(*WORK_ENDS))
        today = self.days[user.object_id] = _Day(day, ip, asn, office, ends)
        return today

    def _session(self, ctx: Context, device: Device, when: datetime, today: _Day) -> str:
        sessions = self.devices.setdefault(device.device_id, [])
        # The latest session opened by ``when`` continues if it takes the sign-in.
        index = bisect.bisect_right(sessions, when, key=lambda s: s.opened)
        if index and sessions[index - 1].takes(when):
            current = sessions[index - 1]
            current.last = max(current.last, when)
            return current.session_id
        if index < len(sessions) and sessions[index].opened - when <= IDLE:
            # Sign-ins arrive out of order within a step: a session opens with its earliest.
            later = sessions[index]
            later.opened = when
            return later.session_id
        rng = ctx.rng
        kept = rng.random() < _KEPT_OVERNIGHT[device.operating_system in ("Ios", "Android")]
        if kept:
            ends = today.work_ends + timedelta(days=1)
        elif when < today.work_ends:
            ends = today.work_ends
        else:
            ends = when + timedelta(hours=rng.uniform(*_EVENING_HOURS))
        if index < len(sessions):
            # A sign-in from before a later session opened: its session ends where that one opens.
            ends = min(ends, sessions[index].opened)
        opened = _Session(new_id(rng), when, when, ends, kept)
        sessions.insert(index, opened)
        if len(sessions) > _REMEMBERED:
            del sessions[0]
        return opened.session_id

    def signed_in(self, user: User, when: datetime) -> None:
        """Note a successful sign-in of ``user`` at ``when``."""
        last = self.last_success.get(user.object_id)
        if last is None or when > last:
            self.last_success[user.object_id] = when

    def has_history(self, user: User, before: datetime) -> bool:
        """Whether ``user`` signed in successfully within ``HISTORY`` before ``before``."""
        last = self.last_success.get(user.object_id)
        return last is not None and before - HISTORY <= last < before
