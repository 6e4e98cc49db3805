"""Authentication rules against a baseline: new country, impossible travel, new workload IP."""

from __future__ import annotations

import ipaddress
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import cached_property, lru_cache

from pydantic import Field

from hubsight.detect.base import (
    EventKind,
    Example,
    Finding,
    Hours,
    Minutes,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
    numbered,
)
from hubsight.detect.baseline import from_epoch, network_of
from hubsight.detect.rules.signals import (
    AUTH_LOG_SETS,
    SUCCESS,
    entry_of,
    great_circle_km,
    public_ip,
    refs,
    signin,
)
from hubsight.detect.windows import Entry, Window
from hubsight.errors import ConfigError
from hubsight.parsing.event import Event


class NewCountryConfig(RuleConfig):
    """One notable per user and country per 90 days."""

    dedup_minutes: Minutes = 90 * 1440


class NewCountry(Rule[NewCountryConfig]):
    """A user's first successful sign-in from a country (notable)."""

    meta = RuleMeta(
        id="auth.new_country",
        title="First sign-in from a new country",
        description="A successful sign-in from a country the user had no successful sign-in "
        "from in the baseline horizon before it, by event time. A notable: it goes on the "
        "user's timeline and into later alerts. When an earlier sign-in from that country "
        "arrives late, the notable moves to it; when that earlier sign-in shows the country "
        "was not new after all, the notable is withdrawn.",
        severity=Severity.LOW,
        technique="T1078.004",
        log_sets=AUTH_LOG_SETS,
        runbook="Check the user's travel; look at what else the user did from this country. "
        "Entra sign-in logs can arrive hours late: a notable may move to an earlier sign-in or "
        "be withdrawn as they come in.",
        notable=True,
        uses_baseline=True,
        results=frozenset({SUCCESS}),
        needs_user=True,
    )
    config_type = NewCountryConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire when the country is new for a user who has a baseline; revise later notables."""
        # A plain function, not a generator: every sign-in of a user reaches it, and nearly
        # all come from a country the user is known in.
        placed = _placed_signin(event)
        if placed is None:
            return ()
        user, country = placed
        at = event.timestamp
        # Corrections first: a notable moving to this sign-in is then replaced, not merged.
        # (Judged now, before the sign-in's own first sighting joins the window.)
        findings = list(self._corrections(user, country, at, ctx))
        baseline = ctx.baseline(user)
        horizon = ctx.baseline_horizon
        if baseline.seen("country", country, at, horizon):
            return findings
        known = baseline.known("country", at, horizon)
        # Every first sighting is kept for the lateness: a late sign-in may still give it the
        # history it lacks, or show it was not the first.
        entry = entry_of(event, f"{country}\t{event.source_ip or ''}")
        ctx.window(user).add(entry)
        # A user with no history at all is new, not travelling.
        if known and not ctx.learning(at):
            findings.append(self._finding(user, entry, known, horizon))
        return findings

    def correct(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """What an excepted sign-in changes about later first sightings (see ``_revise``)."""
        placed = _placed_signin(event)
        return () if placed is None else self._corrections(*placed, event.timestamp, ctx)

    def _corrections(
        self, user: str, country: str, at: datetime, ctx: RuleContext
    ) -> Iterable[Finding]:
        # Only a sign-in earlier than some country's latest first sighting can change anything.
        if not ctx.baseline(user).starts_after("country", at):
            return ()
        return self._revise(user, country, at, ctx)

    def _revise(self, user: str, country: str, at: datetime, ctx: RuleContext) -> Iterable[Finding]:
        """Findings of later first sightings that a sign-in at ``at`` makes or unmakes."""
        baseline = ctx.baseline(user)
        horizon = ctx.baseline_horizon
        ts = at.timestamp()
        for later in ctx.window(user).between(ts, ts + horizon.total_seconds()):
            if later.ts == ts:
                continue
            then = from_epoch(later.ts)
            other = later.value.split("\t", 1)[0]
            if baseline.seen("country", other, then, horizon) or ctx.learning(then):
                continue
            known = baseline.known("country", then, horizon)
            if other == country:
                if known:
                    yield self._finding(user, later, known, horizon, retract=True)
            elif not known:
                yield self._finding(user, later, [country], horizon)

    def _finding(
        self,
        user: str,
        entry: Entry,
        known: Sequence[str],
        horizon: timedelta,
        *,
        retract: bool = False,
    ) -> Finding:
        country, ip = entry.value.split("\t", 1)
        return Finding(
            entity=f"{user}|{country}",
            title=f"{user} signed in from {country} for the first time",
            at=from_epoch(entry.ts),
            evidence=[entry.ref],
            user=user,
            source_ip=ip or None,
            baseline=f"countries seen for this user in {horizon.days} days: "
            f"{', '.join(known)}; now: {country}",
            retract=retract,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """A user of DE signing in from NG fires; from DE again does not; no history does not."""
        return (
            Example("DE then NG", numbered([signin(0), signin(600, country="NG")]), fires=True),
            Example("DE then DE", numbered([signin(0), signin(600)]), fires=False),
            Example("first ever sign-in", [signin(0, country="NG")], fires=False),
            Example(
                "NG arrives before the DE sign-in that preceded it",
                numbered([signin(600, country="NG"), signin(0)]),
                fires=True,
            ),
        )


def _placed_signin(event: Event) -> tuple[str, str] | None:
    """The user and country of a successful sign-in that names both."""
    if event.result != SUCCESS or not event.user or not event.geoip_country_code:
        return None
    return event.user, event.geoip_country_code


class TravelConfig(RuleConfig):
    """Speed limit and VPN allowlists."""

    max_speed_kmh: float = Field(default=900.0, gt=0, allow_inf_nan=False)
    # Below this distance, geolocation noise explains the jump; no two places on Earth are further
    # apart than half its circumference.
    min_distance_km: float = Field(default=500.0, ge=0, le=20_040)
    window_hours: Hours = 24
    vpn_ips: tuple[str, ...] = ()
    vpn_organizations: tuple[str, ...] = ()

    @cached_property
    def _vpn_orgs(self) -> frozenset[str]:
        return frozenset(v.lower() for v in self.vpn_organizations)

    @cached_property
    def _vpn_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        try:
            return tuple(ipaddress.ip_network(ip, strict=False) for ip in self.vpn_ips)
        except ValueError as exc:
            raise ConfigError(
                f"impossible travel vpn_ips: {exc}", hint="give CIDRs such as 203.0.113.0/24"
            ) from exc

    def is_vpn(self, event: Event) -> bool:
        """Whether the event comes through an allowlisted VPN egress."""
        org = event.geoip_organization
        if org and self.vpn_organizations and org.lower() in self._vpn_orgs:
            return True
        if not self.vpn_ips or not event.source_ip:
            return False
        address = ipaddress.ip_address(event.source_ip)
        return any(address in net for net in self._vpn_networks)


class _Place:
    """One place's coordinates and its entries, sorted by time."""

    __slots__ = ("entries", "lat", "lon", "times")

    def __init__(self, place: str) -> None:
        lat, lon = place.split(",")
        self.lat, self.lon = float(lat), float(lon)
        self.times: list[float] = []
        self.entries: list[Entry] = []

    def near(self, start: float, end: float) -> list[Entry]:
        times = self.times
        return self.entries[bisect_left(times, start) : bisect_right(times, end)]


class _Places:
    """One user's window entries grouped by place and sorted by time, for range queries.

    Derived from the persisted window (following its pruning, rebuilt whenever the two
    disagree otherwise), so it needs no saving of its own.
    """

    def __init__(self, window: Window) -> None:
        self.window = window
        self.size = 0
        self.by_place: dict[str, _Place] = {}
        for entry in window:
            self.add(entry, _place(entry))

    def add(self, entry: Entry, place: str) -> None:
        spot = self.by_place.get(place)
        if spot is None:
            spot = self.by_place[place] = _Place(place)
        times = spot.times
        if not times or entry.ts >= times[-1]:
            times.append(entry.ts)
            spot.entries.append(entry)
        else:
            index = bisect_right(times, entry.ts)
            times.insert(index, entry.ts)
            spot.entries.insert(index, entry)
        self.size += 1

    def follow(self) -> bool:
        """Drop what the engine pruned from the window; False if still out of step with it."""
        if self.size == len(self.window):
            return True
        # Pruning drops a window's oldest entries: those before its first one are gone.
        first = next(iter(self.window), None)
        oldest = first.ts if first is not None else math.inf
        for place, spot in list(self.by_place.items()):
            cut = bisect_left(spot.times, oldest)
            del spot.times[:cut], spot.entries[:cut]
            self.size -= cut
            if not spot.times:
                del self.by_place[place]
        return self.size == len(self.window)


def _place(entry: Entry) -> str:
    lat, lon, _ = entry.value.split(",", 2)
    return f"{lat},{lon}"


@lru_cache(maxsize=65_536)
def _spot(lat: float, lon: float) -> str:
    # A place's coordinates as its entries carry them: formatting two floats cost more than
    # the rest of a sign-in from a known place.
    return f"{lat:.3f},{lon:.3f}"


@lru_cache(maxsize=65_536)
def _spot_value(spot: str, country: str) -> str:
    # An entry's value, one string for every sign-in from the place: a user's windows hold
    # every successful sign-in for two days, and a string each was ~60 of their ~290 bytes.
    return f"{spot},{country}"


class ImpossibleTravel(Rule[TravelConfig]):
    """Two successful sign-ins too far apart for the time between them."""

    meta = RuleMeta(
        id="auth.impossible_travel",
        title="Multiple country authentications (impossible travel)",
        description="Two successful sign-ins of a user whose great-circle speed exceeds "
        "`max_speed_kmh`, outside the VPN allowlists.",
        severity=Severity.HIGH,
        technique="T1078.004",
        log_sets=AUTH_LOG_SETS,
        runbook="Ask the user which sign-in was theirs; revoke sessions and reset the password "
        "if one was not.",
        windowed=True,
        results=frozenset({SUCCESS}),
        needs_user=True,
    )
    config_type = TravelConfig

    def __init__(self, config: TravelConfig) -> None:
        super().__init__(config)
        self._places: dict[str, _Places] = {}
        self._bucket = config.dedup_minutes * 60.0

    def retention(self) -> timedelta:
        """Pairs are looked for within ``window_hours``."""
        return timedelta(hours=self.config.window_hours)

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Compare the sign-in with every other one of the user within the window."""
        # A plain function, not a generator: every sign-in of a user reaches it, and nearly
        # all come from where the user was before.
        lat, lon, user = event.geoip_latitude, event.geoip_longitude, event.user
        if event.result != SUCCESS or not user or lat is None or lon is None:
            return ()
        if public_ip(event) is None or self.config.is_vpn(event):
            return ()
        window = ctx.window(user)
        here = _spot(lat, lon)
        entry = entry_of(event, _spot_value(here, event.geoip_country_code or "?"))
        places = self._places.get(user)
        if places is None or places.window is not window or not places.follow():
            places = self._places[user] = _Places(window)
        if not window.add(entry):
            return ()
        places.add(entry, here)
        if len(places.by_place) == 1:
            # Only the place it was signed in from: no pair to judge.
            return ()
        return self._pairs(user, entry, here, lat, lon, places)

    def _pairs(
        self, user: str, entry: Entry, here: str, lat: float, lon: float, places: _Places
    ) -> Iterator[Finding]:
        """The findings of the sign-ins of other places too far away for the time between."""
        limit = self.config.max_speed_kmh
        span = self.config.window_hours * 3600.0
        for other, spot in places.by_place.items():
            if other == here:
                continue
            km = great_circle_km(lat, lon, spot.lat, spot.lon)
            if km < self.config.min_distance_km:
                continue
            # Too fast means closer in time than the distance allows at the speed limit.
            reach = min(km / limit * 3600.0, span)
            # Every violating pair is reported (grouped by the dedup bucket of its later
            # sign-in), so the alerts do not depend on which sign-in arrived first.
            buckets: dict[int, list[Entry]] = {}
            for hit in spot.near(entry.ts - reach, entry.ts + reach):
                if abs(hit.ts - entry.ts) < reach:
                    buckets.setdefault(int(max(hit.ts, entry.ts) // self._bucket), []).append(hit)
            for hits in buckets.values():
                yield self._finding(user, entry, hits, km)

    def _finding(self, user: str, entry: Entry, hits: list[Entry], km: float) -> Finding:
        closest = min(hits, key=lambda h: abs(h.ts - entry.ts))
        first, second = sorted((entry, closest), key=lambda e: (e.ts, e.ref))
        hours = max(abs(entry.ts - closest.ts) / 3600.0, 1 / 60)
        route = " -> ".join(e.value.split(",")[2] for e in (first, second))
        return Finding(
            entity=user,
            title=f"Impossible travel for {user}: {route}",
            at=from_epoch(max(e.ts for e in (entry, *hits))),
            evidence=refs([entry, *hits]),
            user=user,
            baseline=f"{km:.0f} km in {hours * 60:.0f} min ({km / hours:.0f} km/h, "
            f"limit {self.config.max_speed_kmh:.0f})",
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Berlin then Lagos after 30 minutes fires, and just over the speed limit; after 12
        hours, or just under the limit, does not. So do 503 km in ten minutes, not 491 km."""

        def lagos(minute: float) -> list[Event]:
            return numbered(
                [signin(0), signin(minute, country="NG", lat=6.45, lon=3.39, ip="102.89.1.1")]
            )

        def south(lat: float) -> list[Event]:
            return numbered([signin(0), signin(10, country="AT", lat=lat, ip="203.0.113.20")])

        # Berlin to Lagos is 5,204 km: 346.9 minutes at ``max_speed_kmh`` (900).
        return (
            Example("Berlin then Lagos in 30 min", lagos(30), fires=True),
            Example("Berlin then Lagos in 12 h", lagos(720), fires=False),
            Example("Berlin then Lagos at 902 km/h", lagos(346), fires=True),
            Example("Berlin then Lagos at 898 km/h", lagos(347.5), fires=False),
            # ``min_distance_km`` (500) south of Berlin: latitude 48.0 is 503 km, 48.1 is 491.
            Example("503 km in ten minutes", south(48.0), fires=True),
            Example("491 km in ten minutes", south(48.1), fires=False),
        )


class WorkloadConfig(RuleConfig):
    """One alert per service principal and network per day."""

    dedup_minutes: Minutes = 1440


class ServicePrincipalNewNetwork(Rule[WorkloadConfig]):
    """A service principal signing in from an IP and ASN it never used."""

    meta = RuleMeta(
        id="auth.service_principal_new_network",
        title="Service principal sign-in from a new IP/ASN",
        description="A successful service principal sign-in from an IP not in its baseline, "
        "whose network (ASN) is not in its baseline either, by event time. When an earlier "
        "sign-in from that network arrives late, the alert moves to it, or is withdrawn when "
        "that sign-in shows the network was known.",
        severity=Severity.MEDIUM,
        technique="T1078.004",
        log_sets=AUTH_LOG_SETS,
        runbook="Check where the app's credentials are deployed; rotate them if this network "
        "is not yours.",
        uses_baseline=True,
        results=frozenset({SUCCESS}),
    )
    config_type = WorkloadConfig

    def reads(self, kind: EventKind) -> bool:
        """Sign-ins naming no user: service principal sign-ins never name one."""
        return super().reads(kind) and not kind.has_user

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire when both the IP and its organization are new for the app; revise later ones."""
        # A plain function, not a generator: nearly every sign-in of a workload comes from an
        # address it used before.
        workload = _workload_signin(event)
        if workload is None:
            return ()
        app_id, subject, network = workload
        at = event.timestamp
        # Corrections first: an alert moving to this sign-in is then replaced, not merged.
        # (Judged now, before the sign-in's own first sighting joins the window.)
        findings = list(self._corrections(subject, network, event.source_ip or "", at, ctx))
        baseline = ctx.baseline(subject)
        horizon = ctx.baseline_horizon
        ip = public_ip(event)
        if not ip or baseline.seen("ip", ip, at, horizon):
            return findings
        if baseline.seen("asn", network, at, horizon):
            return findings
        # Kept for the lateness: a late sign-in may still give it the history it lacks, or show
        # its network was known.
        entry = entry_of(event, f"{ip}\t{network}\t{event.application or app_id}")
        ctx.window(subject).add(entry)
        if baseline.has_history("ip", at, horizon) and not ctx.learning(at):
            findings.append(
                self._finding(app_id, entry, baseline.known("asn", at, horizon), horizon)
            )
        return findings

    def correct(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """What an excepted sign-in changes about later new networks (see ``_revise``)."""
        workload = _workload_signin(event)
        if workload is None:
            return ()
        _, subject, network = workload
        return self._corrections(subject, network, event.source_ip or "", event.timestamp, ctx)

    def _corrections(
        self, subject: str, network: str, ip: str, at: datetime, ctx: RuleContext
    ) -> Iterable[Finding]:
        # Only a sign-in earlier than some network's latest first sighting can change anything.
        if not ctx.baseline(subject).starts_after("asn", at):
            return ()
        return self._revise(subject, ip, network, at, ctx)

    def _revise(
        self, subject: str, ip: str, network: str, at: datetime, ctx: RuleContext
    ) -> Iterable[Finding]:
        """Findings of later new networks that a sign-in at ``at`` makes or unmakes."""
        baseline = ctx.baseline(subject)
        horizon = ctx.baseline_horizon
        ts = at.timestamp()
        app_id = subject.removeprefix("sp:")
        for later in ctx.window(subject).between(ts, ts + horizon.total_seconds()):
            if later.ts == ts:
                continue
            then = from_epoch(later.ts)
            other_ip, other_network, _ = later.value.split("\t", 2)
            if baseline.seen("ip", other_ip, then, horizon) or ctx.learning(then):
                continue
            if baseline.seen("asn", other_network, then, horizon):
                continue
            known = baseline.known("asn", then, horizon)
            had_history = baseline.has_history("ip", then, horizon)
            if other_ip == ip or other_network == network:
                if had_history:
                    yield self._finding(app_id, later, known, horizon, retract=True)
            elif not had_history:
                yield self._finding(app_id, later, sorted({*known, network}), horizon)

    def _finding(
        self,
        app_id: str,
        entry: Entry,
        known: Sequence[str],
        horizon: timedelta,
        *,
        retract: bool = False,
    ) -> Finding:
        ip, network, name = entry.value.split("\t", 2)
        return Finding(
            entity=f"{app_id}|{network}",
            title=f"Service principal {name} signed in from new network {network}",
            at=from_epoch(entry.ts),
            evidence=[entry.ref],
            source_ip=ip,
            baseline=f"networks seen for this app in {horizon.days} days: "
            f"{', '.join(known)}; now: {network}",
            retract=retract,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """A new IP in a new network fires; a new IP in a known network does not."""

        def sp(minute: float, ip: str, org: str) -> Event:
            return signin(
                minute,
                None,
                ip=ip,
                application="billing-sync",
                application_id="11111111-2222-3333-4444-555555555555",
                geoip_organization=org,
            )

        return (
            Example(
                "new network",
                numbered([sp(0, "20.1.1.1", "MICROSOFT-CORP"), sp(60, "45.1.1.1", "EvilHost")]),
                fires=True,
            ),
            Example(
                "known network",
                numbered(
                    [sp(0, "20.1.1.1", "MICROSOFT-CORP"), sp(60, "20.1.1.2", "MICROSOFT-CORP")]
                ),
                fires=False,
            ),
        )


def _workload_signin(event: Event) -> tuple[str, str, str] | None:
    """App id, baseline subject and network of a successful service principal sign-in."""
    app_id, ip = event.application_id, event.source_ip
    if event.actor_type != "service_principal" or event.result != SUCCESS or not app_id or not ip:
        return None
    return app_id, f"sp:{app_id}", event.geoip_organization or network_of(ip)


RULES = (NewCountry, ImpossibleTravel, ServicePrincipalNewNetwork)
