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
        """Ten failures in ten minutes fire; nine, or ten spread over an hour, do not."""
        burst = [signin(m, result=_FAILED) for m in range(10)]
        return (
            Example("ten failures in nine minutes", numbered(burst), fires=True),
            Example("nine failures", numbered(burst[:9]), fires=False),
            Example(
                "ten failures over an hour",
                numbered(signin(m * 6, result=_FAILED) for m in range(10)),
                fires=False,
            ),
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
        """A success after ten failures fires; a success after three does not."""
        failures = [signin(m / 2, result=_FAILED) for m in range(10)]
        return (
            Example("success after ten failures", numbered([*failures, signin(6)]), fires=True),
            Example(
                "success after three failures", numbered([*failures[:3], signin(6)]), fires=False
            ),
            Example("ten failures, no success", numbered(failures), fires=False),
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
        """Five accounts from one IP fire; one account five times, or the office, do not."""
        users = [f"user{i}@contoso.com" for i in range(5)]
        failures = [signin(60 + i, u, result=_FAILED) for i, u in enumerate(users)]
        return (
            Example("five accounts from one IP", numbered(failures), fires=True),
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
        """Five IPs in an hour fire; four do not."""
        attempts = [signin(i * 10, result=_FAILED, ip=f"198.51.100.{i}") for i in range(5)]
        return (
            Example("five IPs in forty minutes", numbered(attempts), fires=True),
            Example("four IPs", numbered(attempts[:4]), fires=False),
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
        """Fifteen users locked out fire; fourteen do not."""
        events = [
            signin(i, f"user{i}@contoso.com", result="FAILED_ACCOUNT_LOCKED", error_code=50053)
            for i in range(15)
        ]
        return (
            Example("fifteen users", numbered(events), fires=True),
            Example("fourteen users", numbered(events[:14]), fires=False),
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
        """Five denials fire; four do not."""
        denials = [signin(i, result="FAILED_MFA", error_code=500121) for i in range(5)]
        return (
            Example("five denials", numbered(denials), fires=True),
            Example("four denials", numbered(denials[:4]), fires=False),
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
        """Success after five denials fires; success alone does not."""
        denials = [signin(i, result="FAILED_MFA", error_code=500121) for i in range(5)]
        return (
            Example("approve after five denials", numbered([*denials, signin(6)]), fires=True),
            Example("success after two denials", numbered([*denials[:2], signin(6)]), fires=False),
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
