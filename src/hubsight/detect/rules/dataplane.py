"""Data-plane rules on baselines: first readers of mail, files and secrets; SAS from outside.

The baselines are fed by the engine (``hubsight.detect.dataplane``), by event time, after the
rules saw each event. Like the sign-in baselines, a first sighting is judged by event time in
any arrival order: every first sighting stays in the rule's window for the lateness, and a late,
earlier event retracts the findings it shows untrue (or raises those it shows true). An event
later than the lateness is not judged at all (the rules are ``windowed``): a baseline answers
exactly only from two latenesses before its newest sighting on, and what it knew of older times
may be forgotten, so such an event could look new when it was not. It still teaches the
baselines.
Their examples are Event Hub records beside this module (``examples/<rule>.examples.json``).
"""

from __future__ import annotations

import ipaddress
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from hubsight.detect.base import (
    EventKind,
    Example,
    Finding,
    Minutes,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
)
from hubsight.detect.baseline import from_epoch
from hubsight.detect.content.examples import load_examples
from hubsight.detect.dataplane import (
    GRAPH,
    KEY_VAULT,
    SIGNIN,
    STORAGE_READ,
    TENANT,
    Sighting,
    network,
    network_subject,
    sighting,
    signin_address,
)
from hubsight.detect.rules.signals import SUCCESS, entry_of, public_ip
from hubsight.detect.windows import Entry
from hubsight.errors import ConfigError
from hubsight.parsing.event import Event, LogSet

EXAMPLES_DIR = Path(__file__).parent / "examples"
_DATA_PLANE_SETS = frozenset({LogSet.CLOUD_SERVICE_ACTIVITY, LogSet.FILE_ACCESS_ACTIVITY})
_SIGNIN_SETS = frozenset({LogSet.INGRESS_AUTHENTICATION, LogSet.SSO_AUTHENTICATION})
_STORAGE = frozenset({"StorageRead", "StorageWrite", "StorageDelete"})
_SHOWN = 5


class FirstSeenConfig(RuleConfig):
    """One alert per subject and value per 90 days (a value new again after the horizon)."""

    dedup_minutes: Minutes = 90 * 1440


class FirstSeen(Rule[FirstSeenConfig]):
    """A value a data-plane baseline had not seen in the horizon before, once it has history.

    Subclasses name the baselines they read (``prefix`` of ``Sighting.subject``) and how a
    finding reads. As for new countries, nothing fires before the subject has any history (the
    first reader of a newly logged vault is not news) nor during the learning period.
    """

    config_type = FirstSeenConfig
    prefix: ClassVar[str]
    categories: ClassVar[frozenset[str]]
    noun: ClassVar[str]

    def reads(self, kind: EventKind) -> bool:
        """Successful requests of the categories the rule's baselines learn from."""
        return super().reads(kind) and kind.category in self.categories

    def _sighting(self, event: Event) -> Sighting | None:
        seen = sighting(event)
        return seen if seen is not None and seen.subject.startswith(self.prefix) else None

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire when the value is new for a subject with history; revise later first sightings."""
        seen = self._sighting(event)
        if seen is None:
            return
        at = event.timestamp
        # Corrections first: an alert moving to this event is then replaced, not merged.
        yield from self._corrections(seen, at, ctx)
        baseline = ctx.baseline(seen.subject)
        horizon = ctx.baseline_horizon
        if baseline.seen(seen.kind, seen.value, at, horizon):
            return
        # Every first sighting is kept for the lateness: a late event may still give it the
        # history it lacks, or show it was not the first.
        entry = entry_of(event, f"{seen.value}\t{seen.label}\t{event.source_ip or ''}")
        ctx.window(seen.subject).add(entry)
        if baseline.has_history(seen.kind, at, horizon) and not ctx.learning(at):
            yield self._finding(seen.subject, entry, baseline.known(seen.kind, at, horizon), ctx)

    def correct(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """What an excepted request changes about later first sightings (see ``_revise``)."""
        seen = self._sighting(event)
        return () if seen is None else self._corrections(seen, event.timestamp, ctx)

    def _corrections(self, seen: Sighting, at: datetime, ctx: RuleContext) -> Iterable[Finding]:
        # Only an event earlier than some value's latest first sighting can change anything.
        if not ctx.baseline(seen.subject).starts_after(seen.kind, at):
            return ()
        return self._revise(seen, at, ctx)

    def _revise(self, seen: Sighting, at: datetime, ctx: RuleContext) -> Iterable[Finding]:
        """Findings of later first sightings that a sighting at ``at`` makes or unmakes."""
        baseline = ctx.baseline(seen.subject)
        horizon = ctx.baseline_horizon
        ts = at.timestamp()
        for later in ctx.window(seen.subject).between(ts, ts + horizon.total_seconds()):
            if later.ts == ts:
                continue
            then = from_epoch(later.ts)
            other = later.value.split("\t", 1)[0]
            if baseline.seen(seen.kind, other, then, horizon) or ctx.learning(then):
                continue
            known = baseline.known(seen.kind, then, horizon)
            if other == seen.value:
                if known:
                    yield self._finding(seen.subject, later, known, ctx, retract=True)
            elif not known:
                yield self._finding(seen.subject, later, [seen.value], ctx)

    def _finding(
        self,
        subject: str,
        entry: Entry,
        known: Sequence[str],
        ctx: RuleContext,
        *,
        retract: bool = False,
    ) -> Finding:
        value, label, ip = entry.value.split("\t", 2)
        scope = subject.removeprefix(self.prefix)
        shown = ", ".join(known[:_SHOWN])
        if len(known) > _SHOWN:
            shown += f" and {len(known) - _SHOWN} more"
        return Finding(
            entity=f"{subject}|{value}",
            title=self.title_of(label, scope),
            at=from_epoch(entry.ts),
            evidence=[entry.ref],
            user=label.lower() if "@" in label else None,
            source_ip=ip or None,
            baseline=f"{self.noun} in {ctx.baseline_horizon.days} days ({len(known)}): "
            f"{shown}; now: {label}",
            retract=retract,
        )

    @abstractmethod
    def title_of(self, label: str, scope: str) -> str:
        """The alert title for a first sighting of ``label`` in ``scope``."""

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """The records of ``examples/<rule name>.examples.json``, parsed."""
        return load_examples(EXAMPLES_DIR / f"{cls.meta.id.partition('.')[2]}.examples.json")


_FIRST_SEEN = (
    "Judged by event time against the baseline horizon (90 days); silent during the learning "
    "period and until the baseline has any history. A late, earlier request moves the alert "
    "to it, or withdraws it when it shows the {0} was known; a request arriving later than "
    "the lateness (24 h) is not judged."
)


class NewMailReader(FirstSeen):
    """An application reading mail through Microsoft Graph for the first time."""

    meta = RuleMeta(
        id="graph.new_app_reads_mail",
        title="Mail read by an application not seen before",
        description="A successful Microsoft Graph request reading mail (messages, mail "
        "folders, attachments) by an application that read no mail in the tenant in the "
        "baseline horizon before it. A consent-phishing or stolen-credential application "
        "collecting mail shows here first. " + _FIRST_SEEN.format("application"),
        severity=Severity.MEDIUM,
        technique="T1114.002",
        log_sets=frozenset({LogSet.CLOUD_SERVICE_ACTIVITY}),
        runbook="Find the application (its id) in Enterprise applications: who consented to "
        "it, with which Mail permissions, and whose mail it read (Log Search by application "
        "id). Revoke its grants and disable it if nobody knows it.",
        uses_baseline=True,
        windowed=True,
        results=frozenset({SUCCESS}),
        family="graph",
        tactics=("collection",),
    )
    prefix = "data:mail"
    categories = frozenset({GRAPH})
    noun = "applications reading mail"

    def title_of(self, label: str, scope: str) -> str:
        """A new mail reader."""
        return f"Application {label} read mail for the first time"


class NewFileReader(FirstSeen):
    """An application downloading OneDrive/SharePoint files or reading blobs for the first time."""

    meta = RuleMeta(
        id="graph.new_app_reads_files",
        title="Files read by an application not seen before",
        description="A successful download of OneDrive or SharePoint content through "
        "Microsoft Graph, or a blob or Azure Files read (OAuth) of a storage account, by an "
        "application that read no such files (of that account) in the baseline horizon "
        "before it. " + _FIRST_SEEN.format("application"),
        severity=Severity.MEDIUM,
        technique="T1530",
        log_sets=_DATA_PLANE_SETS,
        runbook="Find the application (its id) in Enterprise applications and what it read "
        "(Log Search by application id); revoke its access if nobody knows it.",
        uses_baseline=True,
        windowed=True,
        results=frozenset({SUCCESS}),
        family="graph",
        tactics=("collection",),
    )
    prefix = "data:files:"
    categories = frozenset({GRAPH, STORAGE_READ})
    noun = "applications reading these files"

    def title_of(self, label: str, scope: str) -> str:
        """A new file reader, of OneDrive/SharePoint or of a storage account."""
        where = "OneDrive/SharePoint" if scope == "m365" else f"storage account {scope}"
        return f"Application {label} read files of {where} for the first time"


class NewSecretReader(FirstSeen):
    """An identity reading a key vault's secret for the first time."""

    meta = RuleMeta(
        id="graph.new_secret_reader",
        title="Key Vault secret read by an identity not seen before",
        description="A successful SecretGet on a key vault by a user, service principal or "
        "managed identity that read no secret of that vault in the baseline horizon before "
        "it. Stolen credentials are used to read secrets they were never used for. "
        + _FIRST_SEEN.format("identity"),
        severity=Severity.MEDIUM,
        technique="T1555.006",
        log_sets=frozenset({LogSet.CLOUD_SERVICE_ACTIVITY}),
        runbook="Ask the owner of the identity whether it should read this vault; if not, "
        "rotate the secrets it read and remove its access (access policy or role assignment).",
        uses_baseline=True,
        windowed=True,
        results=frozenset({SUCCESS}),
        family="graph",
        tactics=("credential-access",),
    )
    prefix = "data:vault:"
    categories = frozenset({KEY_VAULT})
    noun = "identities reading secrets"

    def reads(self, kind: EventKind) -> bool:
        """Key Vault ``SecretGet`` requests only."""
        return super().reads(kind) and (kind.operation or "").lower() == "secretget"

    def title_of(self, label: str, scope: str) -> str:
        """A new reader of a vault's secrets."""
        return f"{label} read a secret of key vault {scope} for the first time"


class SasConfig(RuleConfig):
    """The tenant's own networks, beside those its sign-ins come from; one alert a day."""

    dedup_minutes: Minutes = 1440
    # CIDRs of the tenant's egress (offices, NAT gateways, workloads): always inside.
    tenant_networks: tuple[str, ...] = ()

    @cached_property
    def _networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        try:
            return tuple(ipaddress.ip_network(n, strict=False) for n in self.tenant_networks)
        except ValueError as exc:
            raise ConfigError(
                f"storage SAS rule tenant_networks: {exc}", hint="give CIDRs such as 203.0.113.0/24"
            ) from exc

    def configured(self, ip: str) -> bool:
        """Whether ``ip`` is in a configured tenant network."""
        if not self.tenant_networks:
            return False
        address = ipaddress.ip_address(ip)
        return any(address in net for net in self._networks)


class SasFromOutside(Rule[SasConfig]):
    """Storage requests with a SAS token from outside the tenant's addresses."""

    meta = RuleMeta(
        id="graph.sas_outside_tenant",
        title="Storage accessed with a SAS token from outside the tenant's addresses",
        description="A successful Storage request (StorageRead, StorageWrite, StorageDelete) "
        "authorized by a shared access signature from a public address outside the tenant's "
        "addresses: the networks (IPv4 /24, IPv6 /48) any of the tenant's users or service "
        "principals signed in from successfully in the baseline horizon before it, and the "
        "configured `tenant_networks`. A SAS is a bearer token: one used from elsewhere has "
        "usually leaked. Silent during the learning period, and while neither sign-ins nor "
        "networks say what the tenant's addresses are. A late sign-in from that network "
        "withdraws the alert; a request arriving later than the lateness is not judged.",
        severity=Severity.MEDIUM,
        technique="T1530",
        log_sets=_DATA_PLANE_SETS | _SIGNIN_SETS,
        runbook="Find who issued the SAS (the signature's key in identity.tokenHash, the "
        "container) and where the address is; revoke it by rotating the account key it was "
        "signed with (or the user delegation key), and add the network to tenant_networks if "
        "it is yours.",
        uses_baseline=True,
        windowed=True,
        results=frozenset({SUCCESS}),
        family="graph",
        tactics=("collection",),
    )
    config_type = SasConfig

    def reads(self, kind: EventKind) -> bool:
        """Storage requests, and sign-ins (which make their networks the tenant's)."""
        if not super().reads(kind):
            return False
        return kind.log_set in _SIGNIN_SETS or kind.category in _STORAGE

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire on a SAS request from an unknown network; a sign-in revises later ones."""
        if event.log_set in _SIGNIN_SETS:
            yield from self.correct(event, ctx)
            return
        ip = public_ip(event)
        if event.auth_type != "SAS" or not ip or self.config.configured(ip):
            return
        at = event.timestamp
        horizon = ctx.baseline_horizon
        net = network(ip)
        if ctx.baseline(network_subject(net)).seen(SIGNIN, "", at, horizon):
            return
        account = event.target_resource or "?"
        entry = entry_of(event, f"{net}\t{ip}\t{account}")
        # Kept for the lateness: a late sign-in may still show the network is the tenant's.
        ctx.window("outside").add(entry)
        if self._knows_tenant(at, ctx) and not ctx.learning(at):
            yield self._finding(entry, ctx)

    def correct(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """What a sign-in at its event time changes about later SAS requests from outside."""
        ip = signin_address(event)
        if not ip:
            return
        ts = event.timestamp.timestamp()
        horizon = ctx.baseline_horizon
        later = ctx.window("outside").between(ts, ts + horizon.total_seconds())
        if not later:
            return
        home = network(ip)
        for entry in later:
            then = from_epoch(entry.ts)
            net = entry.value.split("\t", 1)[0]
            if entry.ts == ts or ctx.learning(then):
                continue
            # Already known then: an earlier correction withdrew it, or it never fired.
            if ctx.baseline(network_subject(net)).seen(SIGNIN, "", then, horizon):
                continue
            knew = self._knows_tenant(then, ctx)
            if net == home:
                if knew:
                    yield self._finding(entry, ctx, retract=True)
            elif not knew:
                yield self._finding(entry, ctx)

    def _knows_tenant(self, at: datetime, ctx: RuleContext) -> bool:
        """Whether the tenant's addresses are known at ``at``: configured, or from sign-ins."""
        if self.config.tenant_networks:
            return True
        return ctx.baseline(TENANT).has_history(SIGNIN, at, ctx.baseline_horizon)

    def _finding(self, entry: Entry, ctx: RuleContext, *, retract: bool = False) -> Finding:
        net, ip, account = entry.value.split("\t", 2)
        return Finding(
            entity=f"{account}|{net}",
            title=f"Storage account {account} accessed with a SAS token from {ip}",
            at=from_epoch(entry.ts),
            evidence=[entry.ref],
            source_ip=ip,
            baseline=f"no successful sign-in of the tenant from {net} in "
            f"{ctx.baseline_horizon.days} days, and not in tenant_networks",
            retract=retract,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """The records of ``examples/sas_outside_tenant.examples.json``, parsed."""
        return load_examples(EXAMPLES_DIR / "sas_outside_tenant.examples.json")


RULES = (NewMailReader, NewFileReader, NewSecretReader, SasFromOutside)
