"""Authentication rules against a baseline: new country, impossible travel, new workload IP."""

from __future__ import annotations

import ipaddress
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import cached_property

from hubsight.detect.base import (
    EventRef,
    Example,
    Finding,
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

    dedup_minutes: int = 90 * 1440


class NewCountry(Rule[NewCountryConfig]):
    """A user's first successful sign-in from a country (notable)."""

    meta = RuleMeta(
        id="auth.new_country",
        title="First sign-in from a new country",
        description="A successful sign-in from a country not in the user's baseline. A notable: "
        "it goes on the user's timeline and into later alerts.",
        severity=Severity.LOW,
        technique="T1078.004",
        log_sets=AUTH_LOG_SETS,
        runbook="Check the user's travel; look at what else the user did from this country.",
        notable=True,
        uses_baseline=True,
        results=frozenset({SUCCESS}),
    )
    config_type = NewCountryConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire when the country is new for a user who has a baseline."""
        country, user, at = event.geoip_country_code, event.user, event.timestamp
        if event.result != SUCCESS or not user or not country or ctx.learning(at):
            return
        baseline = ctx.baseline(user)
        horizon = ctx.baseline_horizon
        known = baseline.known("country", at, horizon)
        # A user with no history at all is new, not travelling.
        if not known or country in known:
            return
        yield Finding(
            entity=f"{user}|{country}",
            title=f"{user} signed in from {country} for the first time",
            at=at,
            evidence=[EventRef.of(event)],
            user=user,
            source_ip=event.source_ip,
            baseline=f"countries seen for this user in {horizon.days} days: "
            f"{', '.join(known)}; now: {country}",
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """A user of DE signing in from NG fires; from DE again does not; no history does not."""
        return (
            Example("DE then NG", numbered([signin(0), signin(600, country="NG")]), fires=True),
            Example("DE then DE", numbered([signin(0), signin(600)]), fires=False),
            Example("first ever sign-in", [signin(0, country="NG")], fires=False),
        )


class TravelConfig(RuleConfig):
    """Speed limit and VPN allowlists."""

    max_speed_kmh: float = 900.0
    # Below this distance, geolocation noise explains the jump.
    min_distance_km: float = 500.0
    window_hours: int = 24
    vpn_ips: tuple[str, ...] = ()
    vpn_organizations: tuple[str, ...] = ()

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
        org = (event.geoip_organization or "").lower()
        if org and any(v.lower() == org for v in self.vpn_organizations):
            return True
        if not self.vpn_ips or not event.source_ip:
            return False
        address = ipaddress.ip_address(event.source_ip)
        return any(address in net for net in self._vpn_networks)


class _Places:
    """One user's window entries grouped by place and sorted by time, for range queries.

    Derived from the persisted window (rebuilt whenever the two disagree), so it needs no
    saving of its own.
    """

    def __init__(self, window: Window) -> None:
        self.window = window
        self.size = 0
        self.by_place: dict[str, tuple[list[float], list[Entry]]] = {}
        for entry in window:
            self.add(entry)

    def add(self, entry: Entry) -> None:
        times, entries = self.by_place.setdefault(_place(entry), ([], []))
        index = bisect_right(times, entry.ts)
        times.insert(index, entry.ts)
        entries.insert(index, entry)
        self.size += 1

    def near(self, place: str, start: float, end: float) -> list[Entry]:
        times, entries = self.by_place[place]
        return entries[bisect_left(times, start) : bisect_right(times, end)]


def _place(entry: Entry) -> str:
    lat, lon, _ = entry.value.split(",", 2)
    return f"{lat},{lon}"


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
        lat, lon, user = event.geoip_latitude, event.geoip_longitude, event.user
        if event.result != SUCCESS or not user or lat is None or lon is None:
            return
        if public_ip(event) is None or self.config.is_vpn(event):
            return
        window = ctx.window(user)
        entry = entry_of(event, f"{lat:.3f},{lon:.3f},{event.geoip_country_code or '?'}")
        places = self._places.get(user)
        if places is None or places.window is not window or places.size != len(window):
            places = self._places[user] = _Places(window)
        if not window.add(entry):
            return
        places.add(entry)
        here = _place(entry)
        limit = self.config.max_speed_kmh
        span = self.config.window_hours * 3600.0
        for other, _ in places.by_place.items():
            if other == here:
                continue
            olat, olon = (float(v) for v in other.split(","))
            km = great_circle_km(lat, lon, olat, olon)
            if km < self.config.min_distance_km:
                continue
            # Too fast means closer in time than the distance allows at the speed limit.
            reach = min(km / limit * 3600.0, span)
            # Every violating pair is reported (grouped by the dedup bucket of its later
            # sign-in), so the alerts do not depend on which sign-in arrived first.
            buckets: dict[int, list[Entry]] = {}
            for hit in places.near(other, entry.ts - reach, entry.ts + reach):
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
        """Berlin then Lagos after 30 minutes fires; after 12 hours does not."""
        lagos = {"country": "NG", "lat": 6.45, "lon": 3.39, "ip": "102.89.1.1"}
        return (
            Example(
                "Berlin then Lagos in 30 min",
                numbered([signin(0), signin(30, **lagos)]),  # type: ignore[arg-type]
                fires=True,
            ),
            Example(
                "Berlin then Lagos in 12 h",
                numbered([signin(0), signin(720, **lagos)]),  # type: ignore[arg-type]
                fires=False,
            ),
        )


class WorkloadConfig(RuleConfig):
    """One alert per service principal and network per day."""

    dedup_minutes: int = 1440


class ServicePrincipalNewNetwork(Rule[WorkloadConfig]):
    """A service principal signing in from an IP and ASN it never used."""

    meta = RuleMeta(
        id="auth.service_principal_new_network",
        title="Service principal sign-in from a new IP/ASN",
        description="A successful service principal sign-in from an IP not in its baseline, "
        "whose network (ASN) is not in its baseline either.",
        severity=Severity.MEDIUM,
        technique="T1078.004",
        log_sets=AUTH_LOG_SETS,
        runbook="Check where the app's credentials are deployed; rotate them if this network "
        "is not yours.",
        uses_baseline=True,
        results=frozenset({SUCCESS}),
    )
    config_type = WorkloadConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire when both the IP and its organization are new for the app."""
        ip, app_id, at = public_ip(event), event.application_id, event.timestamp
        if event.actor_type != "service_principal" or event.result != SUCCESS:
            return
        if not ip or not app_id or ctx.learning(at):
            return
        baseline = ctx.baseline(f"sp:{app_id}")
        horizon = ctx.baseline_horizon
        if not baseline.has_history("ip", at) or baseline.seen("ip", ip, at, horizon):
            return
        network = event.geoip_organization or network_of(ip)
        if baseline.seen("asn", network, at, horizon):
            return
        name = event.application or app_id
        yield Finding(
            entity=f"{app_id}|{network}",
            title=f"Service principal {name} signed in from new network {network}",
            at=at,
            evidence=[EventRef.of(event)],
            source_ip=ip,
            baseline=f"networks seen for this app in {horizon.days} days: "
            f"{', '.join(baseline.known('asn', at, horizon))}; now: {network}",
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


RULES = (NewCountry, ImpossibleTravel, ServicePrincipalNewNetwork)
