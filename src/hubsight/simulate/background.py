"""Everyday tenant traffic: every category in realistic proportions with a daily and weekly rhythm.

People sign in during their local working day (and much less at night and at weekends); devices
refresh tokens around the clock; workloads, policy scans and Azure's own reports are steady.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from hubsight.simulate import activity, directory, signins
from hubsight.simulate.changes import everyday_change, everyday_operation, password_change
from hubsight.simulate.draft import Context, Draft, iso7, poisson
from hubsight.simulate.geo import azure_ip
from hubsight.simulate.platform import platform_builders
from hubsight.simulate.resources import resource_builders
from hubsight.simulate.tenant import User, new_id

Rhythm = Literal["people", "devices", "steady"]
_T = TypeVar("_T")

# Records a relay cut short: their category and everything after the first fields are gone.
TRUNCATED = "(truncated)"

# Share of each category in a tenant's stream (roughly what a mid-sized tenant sends when all
# Entra and Activity Log categories are exported), and whether people drive it.
MIX: dict[str, tuple[float, Rhythm]] = {
    "NonInteractiveUserSignInLogs": (0.36, "devices"),
    "SignInLogs": (0.08, "people"),
    "ServicePrincipalSignInLogs": (0.08, "steady"),
    "MicrosoftServicePrincipalSignInLogs": (0.01, "steady"),
    "ManagedIdentitySignInLogs": (0.09, "steady"),
    "ADFSSignInLogs": (0.01, "people"),
    "AuditLogs": (0.04, "people"),
    "ProvisioningLogs": (0.01, "steady"),
    "Administrative": (0.07, "people"),
    "Policy": (0.05, "steady"),
    "Security": (0.0001, "steady"),
    "ServiceHealth": (0.0002, "steady"),
    "ResourceHealth": (0.002, "steady"),
    "Alert": (0.003, "steady"),
    "Autoscale": (0.003, "steady"),
    "Recommendation": (0.001, "steady"),
    "SecurityAlert": (0.0001, "steady"),
    "MicrosoftGraphActivityLogs": (0.14, "people"),
    "AuditEvent": (0.04, "steady"),
    # Resource logs of the subscriptions' busiest services, and Defender continuous export.
    "StorageRead": (0.03, "people"),
    "StorageWrite": (0.01, "people"),
    "StorageDelete": (0.002, "people"),
    "kube-audit": (0.02, "steady"),
    "kube-audit-admin": (0.005, "steady"),
    "AzureFirewallNetworkRule": (0.015, "people"),
    "AzureFirewallApplicationRule": (0.01, "people"),
    "AZFWNetworkRule": (0.015, "people"),
    "AZFWApplicationRule": (0.01, "people"),
    "ApplicationGatewayFirewallLog": (0.003, "steady"),
    "FrontDoorWebApplicationFirewallLog": (0.002, "steady"),
    "SQLSecurityAuditEvents": (0.01, "people"),
    "OperationalLogs": (0.001, "steady"),
    "DefenderAssessments": (0.001, "steady"),
    "DefenderSubAssessments": (0.0005, "steady"),
    "DefenderSecureScores": (0.0001, "steady"),
    "DefenderRegulatoryCompliance": (0.0003, "steady"),
    TRUNCATED: (0.001, "steady"),
}
# What people do at a rate per person per day, whatever the stream's rate: as shares of the
# stream they grew with it (at 3.4 records/s per 1,000 users, 1.5 password changes a person a
# day and ~90 risk detections per 1,000 users). A few password changes a day per 1,000 users (no
# forced expiry: resets and voluntary changes); ID Protection's detections, single digits to tens
# a day per 1,000 users, each raising the user's risk (a RiskyUsers update).
PERSONAL: dict[str, tuple[float, tuple[str, ...]]] = {
    "password change": (0.004, ("AuditLogs",)),
    "risk detection": (0.008, ("UserRiskEvents", "RiskyUsers")),
}
CATEGORIES = (*MIX, "RiskyUsers", "UserRiskEvents")
# Deliberately broken records: the only ones that must land in Unparsed Data (with their reason).
BROKEN = (TRUNCATED,)

# How interactive sign-ins go, as the codes of their records in turn: most succeed at once;
# interrupted ones (MFA required, "Stay signed in?", the account picker) go on, seconds later and
# in the same flow, to a success or, after an MFA prompt, sometimes to a denial.
_INTERACTIVE_FLOWS: tuple[tuple[tuple[int, ...], float], ...] = (
    ((0,), 0.885),
    ((50126,), 0.03),
    ((50140, 0), 0.03),
    ((50074, 0), 0.016),
    ((50074, 50140, 0), 0.004),
    ((50074, 500121), 0.004),
    ((16000, 0), 0.01),
    ((50058,), 0.005),
    ((53003,), 0.004),
    ((70044,), 0.003),
    ((65001,), 0.003),
    ((50125,), 0.003),
    ((50055,), 0.002),
    ((50053,), 0.001),
)
_NONINTERACTIVE_CODES = (
    (0, 0.93),
    (50173, 0.015),
    (50133, 0.01),
    (70044, 0.01),
    (50076, 0.015),
    (65001, 0.005),
    (53003, 0.005),
    (50058, 0.01),
)


def working_factor(local_hour: float, weekday: int) -> float:
    """How busy people are at a local hour: 1.0 mid-morning on a weekday, ~0.05 at night."""
    day = 1.0 / (1.0 + math.exp(-(local_hour - 8.0) * 2)) - 1.0 / (
        1.0 + math.exp(-(local_hour - 18.5) * 1.5)
    )
    level = 0.04 + 0.96 * max(day, 0.0)
    return level * (1.0 if weekday < 5 else 0.2)


def rhythm(kind: Rhythm, when: datetime, utc_offset: float) -> float:
    """The rate multiplier of a kind of traffic (people, devices, steady) at ``when``."""
    if kind == "steady":
        return 1.0
    local = when + timedelta(hours=utc_offset)
    factor = working_factor(local.hour + local.minute / 60, local.weekday())
    return factor if kind == "people" else 0.35 + 0.65 * factor


def _week_mean(kind: Rhythm, offset: float) -> float:
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    samples = [rhythm(kind, start + timedelta(minutes=20 * i), offset) for i in range(7 * 72)]
    return sum(samples) / len(samples)


def _pick(rng: random.Random, table: tuple[tuple[_T, float], ...]) -> _T:
    """An entry of ``table`` drawn by its share (the first when the shares fall short of 1)."""
    roll = rng.random()
    for entry, share in table:
        roll -= share
        if roll < 0:
            return entry
    return table[0][0]


class Background:
    """Draws background records of any category for a moment of the simulated day."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        offset = ctx.tenant.headquarters.utc_offset
        self._offset = offset
        # Normalise so that ``rate`` is the weekly average whatever the mix of rhythms.
        self._norm = sum(weight * _week_mean(kind, offset) for weight, kind in MIX.values())
        self._active = [u for u in ctx.tenant.users if not u.disabled]
        self._builders: dict[str, Callable[[datetime], list[Draft]]] = {
            "NonInteractiveUserSignInLogs": self._token_refresh,
            "SignInLogs": self._interactive_sign_in,
            "ServicePrincipalSignInLogs": self._sp_sign_in,
            "MicrosoftServicePrincipalSignInLogs": self._microsoft_sign_in,
            "ManagedIdentitySignInLogs": lambda t: [
                signins.managed_identity_sign_in(
                    self.ctx, t, self.ctx.rng.choice(self.ctx.tenant.managed_identities)
                )
            ],
            "ADFSSignInLogs": lambda t: [
                signins.adfs_sign_in(
                    self.ctx, t, self._person(t), 50126 if self.ctx.rng.random() < 0.04 else 0
                )
            ],
            "AuditLogs": self._audit,
            "ProvisioningLogs": self._provisioning,
            "Administrative": self._administrative,
            "Policy": self._policy,
            "MicrosoftGraphActivityLogs": self._graph,
            "AuditEvent": self._key_vault,
            TRUNCATED: self._truncated,
            "SecurityAlert": lambda t: [
                activity.defender_export(self.ctx, t, self._benign_alert())
            ],
            "Security": lambda t: [activity.defender_activity(self.ctx, t, self._benign_alert())],
        }
        self._builders.update(platform_builders(ctx))
        self._builders.update(resource_builders(ctx))
        self._people_mean = _week_mean("people", offset)
        self._personal: dict[str, Callable[[datetime], list[Draft]]] = {
            "password change": self._password_change,
            "risk detection": self._risk_event,
        }

    def weights(
        self, when: datetime, wanted: Collection[str] | None = None
    ) -> tuple[list[str], list[float], float]:
        """Categories, their relative rates at ``when``, and the multiplier of the stream's
        rate that they make up: 1.0 on a weekly average for all of them, their share of it for
        the ``wanted`` ones (the others' rates are 0), so that each keeps its own rate."""
        rates = [
            weight * rhythm(kind, when, self._offset)
            if wanted is None or category in wanted
            else 0.0
            for category, (weight, kind) in MIX.items()
        ]
        return list(MIX), rates, sum(rates) / self._norm

    def draw(self, category: str, when: datetime) -> list[Draft]:
        """Background records of ``category`` happening at ``when``."""
        return self._builders[category](when)

    def personal(
        self, now: datetime, step: timedelta, wanted: Collection[str] | None
    ) -> list[Draft]:
        """The ``PERSONAL`` events of the step from ``now`` (of the ``wanted`` categories)."""
        rng = self.ctx.rng
        seconds = step.total_seconds()
        # Busier in the headquarters' working day, the weekly mean the rate per day.
        people = len(self._active) * seconds / 86400
        people *= rhythm("people", now, self._offset) / self._people_mean
        drafts: list[Draft] = []
        for kind, (per_day, categories) in PERSONAL.items():
            if wanted is not None and not set(categories) & set(wanted):
                continue
            for _ in range(poisson(rng, per_day * people)):
                when = now + timedelta(seconds=rng.uniform(0, seconds))
                made = self._personal[kind](when)
                drafts += [d for d in made if wanted is None or d.category in wanted]
        return drafts

    def _person(self, when: datetime) -> User:
        """A user, preferring those whose local working day it is."""
        rng = self.ctx.rng
        user = rng.choice(self._active)
        for _ in range(3):
            local = when + timedelta(hours=user.home.utc_offset)
            if rng.random() < working_factor(local.hour, local.weekday()):
                return user
            user = rng.choice(self._active)
        return user

    def _interactive_sign_in(self, when: datetime) -> list[Draft]:
        rng = self.ctx.rng
        user = self._person(when)
        device = rng.choice(user.devices)
        codes = _pick(rng, _INTERACTIVE_FLOWS)
        sign_in = signins.own_sign_in(self.ctx, user, device, when, True, codes[-1])
        return signins.sign_in_flow(self.ctx, when, sign_in, codes)

    def _token_refresh(self, when: datetime) -> list[Draft]:
        # Each refresh is a request of its own, with its own correlationId.
        rng = self.ctx.rng
        user = self._person(when)
        device = rng.choice(user.devices)
        code = _pick(rng, _NONINTERACTIVE_CODES)
        sign_in = signins.own_sign_in(self.ctx, user, device, when, False, code)
        return [signins.user_sign_in(self.ctx, when, sign_in)]

    def _sp_sign_in(self, when: datetime) -> list[Draft]:
        rng = self.ctx.rng
        sp = rng.choice(self.ctx.tenant.service_principals)
        code = 7000215 if rng.random() < 0.015 else 0
        return [
            signins.service_principal_sign_in(
                self.ctx, when, sp, signins.workload_ip(self.ctx, sp), code
            )
        ]

    def _microsoft_sign_in(self, when: datetime) -> list[Draft]:
        sp = self.ctx.rng.choice(self.ctx.tenant.microsoft_principals)
        return [
            signins.service_principal_sign_in(
                self.ctx,
                when,
                sp,
                sp.addresses[0],
                category="MicrosoftServicePrincipalSignInLogs",
            )
        ]

    def _audit(self, when: datetime) -> list[Draft]:
        return [directory.audit(self.ctx, when, everyday_change(self.ctx, self._person(when)))]

    def _provisioning(self, when: datetime) -> list[Draft]:
        rng = self.ctx.rng
        action = rng.choice(("create", "update", "update", "update", "disable"))
        status = "success" if rng.random() < 0.95 else "failure"
        return [directory.provisioning(self.ctx, when, self._person(when), action, status)]

    def _password_change(self, when: datetime) -> list[Draft]:
        user = self._person(when)
        place = self.ctx.sessions.place(self.ctx, user, user.devices[0], when)
        return [directory.audit(self.ctx, when, password_change(user, place.ip))]

    def _risk_event(self, when: datetime) -> list[Draft]:
        # A sign-in of the user's own, from where they are, with properties unfamiliar to ID
        # Protection: low risk, which raises the user's risk to low.
        user = self._person(when)
        place = self.ctx.sessions.place(self.ctx, user, user.devices[0], when)
        kind = "unfamiliarFeatures"
        return [
            directory.risk_detection(self.ctx, when, user, kind, "low", place.ip, user.home),
            directory.risky_user(self.ctx, when, user, "low"),
        ]

    def _administrative(self, when: datetime) -> list[Draft]:
        return activity.administrative(self.ctx, when, everyday_operation(self.ctx, when))

    def _policy(self, when: datetime) -> list[Draft]:
        rng = self.ctx.rng
        resource = rng.choice(self.ctx.tenant.resources)
        effect = rng.choice(("audit", "audit", "audit", "auditIfNotExists", "deny"))
        return [activity.policy(self.ctx, when, resource, effect)]

    def _graph(self, when: datetime) -> list[Draft]:
        user = self._person(when)
        return [directory.graph_activity(self.ctx, when, user, user.home.ip(self.ctx.rng))]

    def _key_vault(self, when: datetime) -> list[Draft]:
        rng = self.ctx.rng
        vault = self.ctx.tenant.resources_of("vaults")[0]
        caller = rng.choice(self.ctx.tenant.managed_identities)
        return [activity.key_vault_audit(self.ctx, when, vault, caller, azure_ip(rng))]

    def _truncated(self, when: datetime) -> list[Draft]:
        # What is left of a sign-in when a relay keeps only a record's first fields: no
        # category, no properties, so no parser can say what it was.
        record = {
            "time": iso7(when),
            "resourceId": f"/tenants/{self.ctx.tenant.tenant_id}/providers/Microsoft.aadiam",
            "operationName": "Sign-in activity",
        }
        return [Draft(when, when, TRUNCATED, record, new_id(self.ctx.rng))]

    def _benign_alert(self) -> activity.DefenderAlert:
        rng = self.ctx.rng
        storage = self.ctx.tenant.resources_of("storageAccounts")[0]
        return activity.DefenderAlert(
            alert_type="Storage.Blob_GeoAnomaly",
            name="Access from an unusual location to a storage account",
            description="Someone accessed the storage account from an unusual location.",
            severity="Low",
            intent="Exploitation",
            resource=storage,
            ip=rng.choice(self._active).home.ip(rng),
        )
