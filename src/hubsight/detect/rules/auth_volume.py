"""Authentication rules that count: brute force, spray, cracking, lockouts, MFA fatigue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import Field

from hubsight.detect.base import (
    Count,
    Example,
    Finding,
    Minutes,
    RuleContext,
    RuleMeta,
    Severity,
    numbered,
)
from hubsight.detect.rules.signals import (
    AUTH_LOG_SETS,
    PASSWORD_FAILURES,
    SUCCESS,
    USER_SUCCESSES,
    SequenceRule,
    ThresholdRule,
    WindowConfig,
    is_mfa_denial,
    refs,
    signin,
    span_finding,
)
from hubsight.detect.windows import Entry
from hubsight.parsing.event import Event

_FAILED = "FAILED_BAD_PASSWORD"
# One second, in the minutes examples are placed by: the edge cases sit one second outside a
# window, so that a window even slightly too long is caught.
SECOND = 1 / 60


class BruteForceConfig(WindowConfig):
    """Failures against one account."""

    count: Count = 10
    window_minutes: Minutes = 10


class BruteForce(ThresholdRule[BruteForceConfig]):
    """Many password failures against one account."""

    meta = RuleMeta(
        id="auth.brute_force",
        title="Brute force against an account",
        description="At least `count` password failures for one user within `window_minutes`.",
        severity=Severity.MEDIUM,
        technique="T1110.001",
        log_sets=AUTH_LOG_SETS,
        runbook="Check whether any attempt succeeded; block the source IPs; confirm the user "
        "has MFA and reset the password if a success followed.",
        windowed=True,
        results=PASSWORD_FAILURES,
        needs_user=True,
    )
    config_type = BruteForceConfig

    def select(self, event: Event) -> tuple[str, str] | None:
        """Count password failures per user."""
        if event.user and event.result in PASSWORD_FAILURES:
            return event.user, event.source_ip or ""
        return None

    def describe(self, key: str, span: Sequence[Entry]) -> Finding:
        """Name the user and the IPs."""
        ips = sorted({e.value for e in span if e.value})
        return span_finding(
            key,
            f"Brute force against {key}: {len(span)} failures "
            f"from {', '.join(ips) or 'unknown IP'}",
            span,
            user=key,
            source_ip=ips[0] if len(ips) == 1 else None,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Ten failures in ten minutes fire (the tenth exactly ten minutes after the first too);
        nine, or the tenth one second after the window closes, do not."""
        burst = [signin(m, result=_FAILED) for m in range(10)]

        def tenth_at(minute: float) -> list[Event]:
            return numbered([*burst[:9], signin(minute, result=_FAILED)])

        return (
            Example("ten failures in nine minutes", numbered(burst), fires=True),
            Example("nine failures", numbered(burst[:9]), fires=False),
            Example("tenth failure as the window closes", tenth_at(10), fires=True),
            Example("tenth failure a second too late", tenth_at(10 + SECOND), fires=False),
        )


class BruteForceSuccessConfig(WindowConfig):
    """Failures then a success for one account."""

    count: Count = 10
    window_minutes: Minutes = 10


class BruteForceSuccess(SequenceRule[BruteForceSuccessConfig]):
    """A successful sign-in right after a brute force: the password was probably guessed."""

    meta = RuleMeta(
        id="auth.brute_force_success",
        title="Successful sign-in after brute force",
        description="A success for a user who had at least `count` password failures in the "
        "`window_minutes` before it.",
        severity=Severity.HIGH,
        technique="T1110.001",
        log_sets=AUTH_LOG_SETS,
        runbook="Treat the account as compromised: revoke sessions, reset the password, "
        "review what the session did.",
        windowed=True,
        results=PASSWORD_FAILURES | {SUCCESS},
        needs_user=True,
    )
    config_type = BruteForceSuccessConfig
    closing_window = USER_SUCCESSES

    def select(self, event: Event) -> tuple[str, bool] | None:
        """Failures lead up; a success closes."""
        if not event.user:
            return None
        if event.result in PASSWORD_FAILURES:
            return event.user, False
        if event.result == SUCCESS:
            return event.user, True
        return None

    def describe(self, key: str, leadup: Sequence[Entry], success: Entry) -> Finding:
        """Name the user and the failures."""
        return Finding(
            entity=key,
            title=f"{key} signed in after {len(leadup)} password failures",
            at=success.ref.timestamp,
            evidence=[*refs(leadup), success.ref],
            user=key,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """A success after ten failures fires, also ten minutes after the first; a success
        after nine, or one second after the first failure left the window, does not."""
        failures = [signin(m / 2, result=_FAILED) for m in range(10)]
        return (
            Example("success after ten failures", numbered([*failures, signin(6)]), fires=True),
            Example(
                "success after nine failures", numbered([*failures[:9], signin(6)]), fires=False
            ),
            Example("ten failures, no success", numbered(failures), fires=False),
            Example(
                "success as the first failure leaves the window",
                numbered([*failures, signin(10)]),
                fires=True,
            ),
            Example(
                "success a second after the first failure left the window",
                numbered([*failures, signin(10 + SECOND)]),
                fires=False,
            ),
        )


class SprayConfig(WindowConfig):
    """Distinct accounts failing from one IP."""

    count: Count = 5
    window_minutes: Minutes = 20
    # An IP from which most of the failing accounts have signed in successfully before is the
    # office's egress (people mistyping), not a sprayer. 1.0 turns this off.
    known_ip_share: float = Field(default=0.5, gt=0, le=1)


class PasswordSpray(ThresholdRule[SprayConfig]):
    """One IP failing against many accounts."""

    meta = RuleMeta(
        id="auth.password_spray",
        title="Password spray",
        description="One source IP with password failures for at least `count` distinct "
        "accounts within `window_minutes`, unless at least `known_ip_share` of those accounts "
        "had signed in successfully from that IP before (a shared office egress), counting "
        "sign-ins at least the lateness (24 h) before the window's last failure: those have all "
        "arrived, so the verdict does not depend on delivery order.",
        severity=Severity.HIGH,
        technique="T1110.003",
        log_sets=AUTH_LOG_SETS,
        runbook="Block the IP; look for successes from it; enforce MFA on the targeted accounts.",
        windowed=True,
        uses_baseline=True,
        results=PASSWORD_FAILURES,
        needs_user=True,
    )
    config_type = SprayConfig
    distinct = True

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Count accounts per IP; drop crossings from an IP the accounts know."""
        for finding in super().evaluate(event, ctx):
            users = finding.context["users"]
            ip, at, horizon = event.source_ip or "", finding.at - ctx.lateness, ctx.baseline_horizon
            known = sum(ctx.baseline(u).seen("ip", ip, at, horizon) for u in users)
            if known < self.config.known_ip_share * len(users) or self.config.known_ip_share >= 1:
                yield finding

    def select(self, event: Event) -> tuple[str, str] | None:
        """Count accounts per IP."""
        if event.source_ip and event.user and event.result in PASSWORD_FAILURES:
            return event.source_ip, event.user
        return None

    def describe(self, key: str, span: Sequence[Entry]) -> Finding:
        """Name the IP and how many accounts."""
        users = sorted({e.value for e in span})
        return span_finding(
            key,
            f"Password spray from {key} against {len(users)} accounts",
            span,
            source_ip=key,
            context={"users": users[:50]},
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Five accounts from one IP fire, also over exactly twenty minutes; four, one account
        five times, five over twenty minutes and a second, or the office, do not."""
        users = [f"user{i}@contoso.com" for i in range(5)]
        failures = [signin(60 + i, u, result=_FAILED) for i, u in enumerate(users)]

        def fifth_at(minute: float) -> list[Event]:
            return numbered([*failures[:4], signin(minute, users[4], result=_FAILED)])

        return (
            Example("five accounts from one IP", numbered(failures), fires=True),
            Example("four accounts", numbered(failures[:4]), fires=False),
            Example("fifth account as the window closes", fifth_at(80), fires=True),
            Example("fifth account a second too late", fifth_at(80 + SECOND), fires=False),
            Example(
                "one account five times",
                numbered(signin(i, result=_FAILED) for i in range(5)),
                fires=False,
            ),
            Example(
                "five colleagues mistyping at the office",
                numbered([*(signin(i - 2880, u) for i, u in enumerate(users)), *failures]),
                fires=False,
            ),
            # ``known_ip_share`` (0.5) of five accounts is 2.5: two known is under, three not.
            Example(
                "two of five accounts known at the address",
                numbered([*(signin(i - 2880, u) for i, u in enumerate(users[:2])), *failures]),
                fires=True,
            ),
            Example(
                "three of five accounts known at the address",
                numbered([*(signin(i - 2880, u) for i, u in enumerate(users[:3])), *failures]),
                fires=False,
            ),
        )


class CrackingConfig(WindowConfig):
    """Distinct IPs failing against one account."""

    count: Count = 5
    window_minutes: Minutes = 60


class DistributedCracking(ThresholdRule[CrackingConfig]):
    """One account failing from many IPs."""

    meta = RuleMeta(
        id="auth.distributed_cracking",
        title="Distributed password cracking",
        description="Password failures for one account from at least `count` distinct IPs "
        "within `window_minutes`.",
        severity=Severity.MEDIUM,
        technique="T1110.001",
        log_sets=AUTH_LOG_SETS,
        runbook="Confirm the account has MFA; check for successes; consider a password reset.",
        windowed=True,
        results=PASSWORD_FAILURES,
        needs_user=True,
    )
    config_type = CrackingConfig
    distinct = True

    def select(self, event: Event) -> tuple[str, str] | None:
        """Count IPs per account."""
        if event.user and event.source_ip and event.result in PASSWORD_FAILURES:
            return event.user, event.source_ip
        return None

    def describe(self, key: str, span: Sequence[Entry]) -> Finding:
        """Name the account and the IPs."""
        ips = sorted({e.value for e in span})
        return span_finding(
            key,
            f"Password cracking against {key} from {len(ips)} IPs",
            span,
            user=key,
            context={"source_ips": ips[:50]},
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Five IPs in an hour fire, also exactly an hour apart; four, or the fifth a second
        after the hour, do not."""
        attempts = [signin(i * 10, result=_FAILED, ip=f"198.51.100.{i}") for i in range(5)]

        def fifth_at(minute: float) -> list[Event]:
            return numbered([*attempts[:4], signin(minute, result=_FAILED, ip="198.51.100.4")])

        return (
            Example("five IPs in forty minutes", numbered(attempts), fires=True),
            Example("four IPs", numbered(attempts[:4]), fires=False),
            Example("fifth IP as the hour closes", fifth_at(60), fires=True),
            Example("fifth IP a second after the hour", fifth_at(60 + SECOND), fires=False),
        )


class LockoutConfig(WindowConfig):
    """Distinct users locked out tenant-wide."""

    count: Count = 15
    window_minutes: Minutes = 60


class LockoutStorm(ThresholdRule[LockoutConfig]):
    """Account lockouts (50053) across many users: a spray tripping smart lockout."""

    meta = RuleMeta(
        id="auth.lockout_storm",
        title="Account lockouts across many users",
        description="Sign-ins with error 50053 for at least `count` distinct users within "
        "`window_minutes`.",
        severity=Severity.HIGH,
        technique="T1110.003",
        log_sets=AUTH_LOG_SETS,
        runbook="Find the common source IPs or ASNs of the lockouts and block them.",
        windowed=True,
        results=frozenset({"FAILED_ACCOUNT_LOCKED"}),
        needs_user=True,
    )
    config_type = LockoutConfig
    distinct = True

    def select(self, event: Event) -> tuple[str, str] | None:
        """Count locked-out users across the tenant."""
        if event.user:
            return "tenant", event.user
        return None

    def describe(self, key: str, span: Sequence[Entry]) -> Finding:
        """Count the users."""
        users = sorted({e.value for e in span})
        return span_finding(
            key,
            f"{len(users)} accounts locked out within an hour",
            span,
            context={"users": users[:50]},
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Fifteen users locked out within the hour fire, also exactly an hour apart; fourteen,
        or the fifteenth a second after the hour, do not."""

        def lockout(minute: float, i: int) -> Event:
            return signin(
                minute, f"user{i}@contoso.com", result="FAILED_ACCOUNT_LOCKED", error_code=50053
            )

        events = [lockout(i, i) for i in range(15)]
        return (
            Example("fifteen users", numbered(events), fires=True),
            Example("fourteen users", numbered(events[:14]), fires=False),
            Example(
                "fifteenth user as the hour closes",
                numbered([*events[:14], lockout(60, 14)]),
                fires=True,
            ),
            Example(
                "fifteenth user a second after the hour",
                numbered([*events[:14], lockout(60 + SECOND, 14)]),
                fires=False,
            ),
        )


class MfaFatigueConfig(WindowConfig):
    """MFA denials for one user."""

    count: Count = 5
    window_minutes: Minutes = 10


class MfaFatigue(ThresholdRule[MfaFatigueConfig]):
    """Repeated MFA prompts denied or ignored: someone holding the password is pushing."""

    meta = RuleMeta(
        id="auth.mfa_fatigue",
        title="MFA fatigue",
        description="At least `count` MFA denials or timeouts for one user within "
        "`window_minutes`.",
        severity=Severity.MEDIUM,
        technique="T1621",
        log_sets=AUTH_LOG_SETS,
        runbook="Call the user; the password is known to someone else: reset it and switch to "
        "number matching.",
        windowed=True,
        results=frozenset({"FAILED_MFA"}),
        needs_user=True,
    )
    config_type = MfaFatigueConfig

    def select(self, event: Event) -> tuple[str, str] | None:
        """Count MFA denials per user."""
        if event.user and is_mfa_denial(event):
            return event.user, event.source_ip or ""
        return None

    def describe(self, key: str, span: Sequence[Entry]) -> Finding:
        """Name the user."""
        return span_finding(
            key, f"MFA fatigue against {key}: {len(span)} denied prompts", span, user=key
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Five denials within ten minutes fire, also exactly ten minutes apart; four, or the
        fifth a second after the window closes, do not."""
        denials = [signin(i, result="FAILED_MFA", error_code=500121) for i in range(5)]

        def fifth_at(minute: float) -> list[Event]:
            return numbered([*denials[:4], signin(minute, result="FAILED_MFA", error_code=500121)])

        return (
            Example("five denials", numbered(denials), fires=True),
            Example("four denials", numbered(denials[:4]), fires=False),
            Example("fifth denial as the window closes", fifth_at(10), fires=True),
            Example("fifth denial a second too late", fifth_at(10 + SECOND), fires=False),
        )


class MfaFatigueSuccess(SequenceRule[MfaFatigueConfig]):
    """MFA fatigue that ended with the user approving: likely compromise."""

    meta = RuleMeta(
        id="auth.mfa_fatigue_success",
        title="MFA fatigue followed by success",
        description="A success for a user after at least `count` MFA denials in the "
        "`window_minutes` before it.",
        severity=Severity.HIGH,
        technique="T1621",
        log_sets=AUTH_LOG_SETS,
        runbook="Treat the account as compromised: revoke sessions, reset password and MFA.",
        windowed=True,
        results=frozenset({"FAILED_MFA", SUCCESS}),
        needs_user=True,
    )
    config_type = MfaFatigueConfig
    closing_window = USER_SUCCESSES

    def select(self, event: Event) -> tuple[str, bool] | None:
        """Denials lead up; a success closes."""
        if not event.user:
            return None
        if is_mfa_denial(event):
            return event.user, False
        if event.result == SUCCESS:
            return event.user, True
        return None

    def describe(self, key: str, leadup: Sequence[Entry], success: Entry) -> Finding:
        """Name the user."""
        return Finding(
            entity=key,
            title=f"{key} approved MFA after {len(leadup)} denied prompts",
            at=success.ref.timestamp,
            evidence=[*refs(leadup), success.ref],
            user=key,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Success after five denials fires, also ten minutes after the first; after four, or a
        second after the first denial left the window, it does not."""
        denials = [signin(i, result="FAILED_MFA", error_code=500121) for i in range(5)]
        return (
            Example("approve after five denials", numbered([*denials, signin(6)]), fires=True),
            Example("success after four denials", numbered([*denials[:4], signin(6)]), fires=False),
            Example(
                "approve as the first denial leaves the window",
                numbered([*denials, signin(10)]),
                fires=True,
            ),
            Example(
                "approve a second after the first denial left the window",
                numbered([*denials, signin(10 + SECOND)]),
                fires=False,
            ),
        )


RULES = (
    BruteForce,
    BruteForceSuccess,
    PasswordSpray,
    DistributedCracking,
    LockoutStorm,
    MfaFatigue,
    MfaFatigueSuccess,
)
