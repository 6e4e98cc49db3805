"""Authentication rules on one sign-in: disabled account, legacy protocol, risk, anonymizers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from hubsight.detect.base import (
    Days,
    EventRef,
    Example,
    Finding,
    Minutes,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
    numbered,
)
from hubsight.detect.baseline import from_epoch
from hubsight.detect.rules.signals import (
    AUTH_LOG_SETS,
    SUCCESS,
    entry_of,
    raw_has,
    signin,
)
from hubsight.detect.windows import Entry
from hubsight.parsing.event import Event


def _finding(event: Event, entity: str, title: str, **fields: object) -> Finding:
    return Finding(
        entity=entity,
        title=title,
        at=event.timestamp,
        evidence=[EventRef.of(event)],
        user=event.user,
        source_ip=event.source_ip,
        **fields,  # type: ignore[arg-type]
    )


class DayConfig(RuleConfig):
    """One alert per entity per day."""

    dedup_minutes: Minutes = 1440


class DisabledAccount(Rule[DayConfig]):
    """Someone tried to sign in to a disabled account (50057)."""

    meta = RuleMeta(
        id="auth.disabled_account",
        title="Sign-in attempt to a disabled account",
        description="A sign-in with error 50057 (the account is disabled).",
        severity=Severity.MEDIUM,
        technique="T1078",
        log_sets=AUTH_LOG_SETS,
        runbook="Find out who still holds the credentials of the departed account; check the "
        "source IP for other activity.",
        results=frozenset({"FAILED_ACCOUNT_DISABLED"}),
        needs_user=True,
    )
    config_type = DayConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire on 50057."""
        if event.user:
            yield _finding(event, event.user, f"Sign-in attempt to disabled account {event.user}")

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """50057 fires; a bad password does not."""
        return (
            Example(
                "disabled",
                [signin(0, result="FAILED_ACCOUNT_DISABLED", error_code=50057)],
                fires=True,
            ),
            Example(
                "bad password",
                [signin(0, result="FAILED_BAD_PASSWORD", error_code=50126)],
                fires=False,
            ),
        )


# Client apps Entra reports for protocols that cannot do modern authentication (no MFA).
LEGACY_CLIENT_APPS = (
    "Authenticated SMTP",
    "AutoDiscover",
    "Exchange ActiveSync",
    "Exchange Online PowerShell",
    "Exchange Web Services",
    "IMAP4",
    "MAPI Over HTTP",
    "Offline Address Book",
    "Other clients",
    "Outlook Anywhere (RPC over HTTP)",
    "POP3",
    "Reporting Web Services",
    "Universal Outlook",
)


class LegacyConfig(DayConfig):
    """Which client apps count as legacy."""

    client_apps: tuple[str, ...] = LEGACY_CLIENT_APPS


class LegacyAuthentication(Rule[LegacyConfig]):
    """A successful sign-in over a legacy protocol, which bypasses MFA."""

    meta = RuleMeta(
        id="auth.legacy_protocol",
        title="Legacy authentication protocol success",
        description="A successful sign-in whose client app is a legacy protocol (IMAP, POP, "
        "SMTP AUTH, ActiveSync, ...).",
        severity=Severity.MEDIUM,
        technique="T1078.004",
        log_sets=AUTH_LOG_SETS,
        runbook="Block legacy authentication with conditional access; ask the user which "
        "client this was.",
        results=frozenset({SUCCESS}),
        needs_user=True,
    )
    config_type = LegacyConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire on a legacy client app success."""
        if event.result == SUCCESS and event.user and event.client_app in self.config.client_apps:
            yield _finding(
                event,
                f"{event.user}|{event.client_app}",
                f"{event.user} signed in with legacy protocol {event.client_app}",
            )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """IMAP4 success fires; browser success and IMAP4 failure do not."""
        return (
            Example("imap success", [signin(0, client_app="IMAP4")], fires=True),
            Example("browser", [signin(0, client_app="Browser")], fires=False),
            Example(
                "imap failure",
                [signin(0, client_app="IMAP4", result="FAILED_BAD_PASSWORD")],
                fires=False,
            ),
        )


class RiskyConfig(RuleConfig):
    """Which risk levels pass through."""

    levels: tuple[str, ...] = ("high",)


class RiskySignIn(Rule[RiskyConfig]):
    """Entra ID Protection rated a sign-in high risk."""

    meta = RuleMeta(
        id="auth.risky_signin",
        title="Risky sign-in (Entra ID Protection)",
        description="A sign-in Entra ID Protection rated at one of `levels`.",
        severity=Severity.HIGH,
        technique="T1078.004",
        log_sets=AUTH_LOG_SETS,
        runbook="Review the risk detections in Entra ID Protection; confirm with the user or "
        "revoke their sessions.",
    )
    config_type = RiskyConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire on a listed risk level."""
        if event.risk_level and event.risk_level.lower() in self.config.levels:
            who = event.user or event.application or "unknown"
            yield _finding(event, who, f"High-risk sign-in for {who} from {event.source_ip}")

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """High fires; medium does not."""
        return (
            Example("high", [signin(0, risk_level="high")], fires=True),
            Example("medium", [signin(0, risk_level="medium")], fires=False),
        )


# Risk event types and network location types by which sign-in records flag anonymizers.
_NO_RISK = (None, "none")
_ANONYMIZER = (b"anonymizedIPAddress", b"torExitNode", b"anonymousProxy")


class Anonymizer(Rule[DayConfig]):
    """A sign-in the record itself flags as coming from Tor or an anonymizing proxy."""

    meta = RuleMeta(
        id="auth.anonymizer",
        title="Sign-in from an anonymizing IP",
        description="A sign-in whose record carries a risk event or network type of "
        "anonymizedIPAddress / Tor.",
        severity=Severity.MEDIUM,
        technique="T1090.003",
        log_sets=AUTH_LOG_SETS,
        runbook="Confirm with the user; block anonymizers with conditional access.",
    )
    config_type = DayConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire when the raw record names an anonymizer."""
        # Entra lists risk event types only on sign-ins it found risky: the others need no look.
        if event.risk_level in _NO_RISK and event.risk_state in _NO_RISK:
            return
        if raw_has(event, *_ANONYMIZER):
            who = event.user or event.application or "unknown"
            yield _finding(event, who, f"{who} signed in from anonymizing IP {event.source_ip}")

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """A record with anonymizedIPAddress fires; a plain one does not."""
        flagged = b'{"properties":{"riskEventTypes_v2":["anonymizedIPAddress"]}}'
        return (
            Example("flagged", [signin(0, raw=flagged, risk_level="medium")], fires=True),
            Example("plain", [signin(0)], fires=False),
            Example("no risk found", [signin(0, raw=flagged, risk_level="none")], fires=False),
        )


class FlowConfig(RuleConfig):
    """How far back a user's own use of the flow makes it usual."""

    lookback_days: Days = 90
    dedup_minutes: Minutes = 1440


_FLOWS = {"deviceCode": "device code", "ropc": "ROPC"}


class UnusualAuthFlow(Rule[FlowConfig]):
    """Device-code or ROPC flow by a user who does not normally use it (phishing, scripts)."""

    meta = RuleMeta(
        id="auth.unusual_flow",
        title="Device-code or ROPC flow by an unusual user",
        description="A sign-in using the device code or resource-owner password flow by a user "
        "who had not used that flow in the `lookback_days` before it, by event time. When an "
        "earlier use arrives late, the alert moves to it (or is withdrawn, when that earlier use "
        "was not the first either).",
        severity=Severity.MEDIUM,
        technique="T1528",
        log_sets=AUTH_LOG_SETS,
        runbook="Ask the user whether they entered a code; device-code phishing hands the "
        "attacker a token. Revoke sessions if not.",
        uses_baseline=True,
        windowed=True,
        needs_user=True,
    )
    config_type = FlowConfig

    def retention(self) -> timedelta:
        """Remember flows for the lookback."""
        return timedelta(days=self.config.lookback_days)

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire on the first use of a flow by a user within the lookback; revise the next one."""
        flow = _FLOWS.get(event.authentication_protocol or "")
        if flow is None or not event.user:
            return
        window = ctx.window(event.user)
        entry = entry_of(event, flow)
        if not window.add(entry):
            return
        ts, lookback = entry.ts, self.config.lookback_days * 86400.0
        prior = next(
            (
                e.ts
                for e in reversed(window.between(ts - lookback, ts))
                if e.value == flow and e.ts < ts
            ),
            None,
        )
        after = next(
            (e.ts for e in window.between(ts, ts + lookback) if e.value == flow and e.ts > ts), None
        )
        if after is not None:
            # The next use fired unless another use was in its lookback before this one came.
            ties = any(e.value == flow and e != entry for e in window.between(ts, ts))
            then = from_epoch(after)
            if not ties and (prior is None or prior < after - lookback) and not ctx.learning(then):
                for e in window.between(after, after):
                    if e.value == flow:
                        yield self._finding(event.user, flow, e, retract=True)
        if prior is None and not ctx.learning(event.timestamp):
            yield self._finding(event.user, flow, entry, source_ip=event.source_ip)

    def _finding(
        self,
        user: str,
        flow: str,
        entry: Entry,
        *,
        retract: bool = False,
        source_ip: str | None = None,
    ) -> Finding:
        return Finding(
            entity=f"{user}|{flow}",
            title=f"{user} used the {flow} flow",
            at=from_epoch(entry.ts),
            evidence=[entry.ref],
            user=user,
            source_ip=source_ip,
            retract=retract,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """A first device-code sign-in fires; a repeat within the lookback does not, up to its
        last second; a repeat one second after the lookback fires again."""
        first = signin(0, authentication_protocol="deviceCode")
        lookback = 90 * 1440

        def again(minute: float) -> list[Event]:
            return numbered([first, signin(minute, authentication_protocol="deviceCode")])

        return (
            Example("first device code", [first], fires=True),
            Example("no special flow", [signin(0)], fires=False),
            Example("again as the lookback ends", again(lookback), fires=True, alerts=1),
            Example("again a second after the lookback", again(lookback + 1 / 60), True, alerts=2),
        )


RULES = (DisabledAccount, LegacyAuthentication, RiskySignIn, Anonymizer, UnusualAuthFlow)
