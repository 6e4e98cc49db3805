"""Third-party alerts: Defender for Cloud and Entra ID Protection, passed through."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from hubsight.detect.base import (
    EventRef,
    Example,
    Finding,
    Hours,
    Minutes,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
    example_event,
)
from hubsight.parsing.event import Event, LogSet

_VENDOR_SEVERITY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "INFORMATIONAL": Severity.INFO,
}


class PassthroughConfig(RuleConfig):
    """How far back the user's sign-ins are attached."""

    signin_lookback_hours: Hours = 24
    # Vendors raise one alert per occurrence (Defender: per access, per file) and send updates
    # of each: alerts of one kind about one resource or user within a day are one alert.
    dedup_minutes: Minutes = 24 * 60


class VendorAlert(Rule[PassthroughConfig]):
    """Vendor alerts of one kind about one resource or user within a day become one alert."""

    meta = RuleMeta(
        id="thirdparty.vendor_alert",
        title="Third-party alert",
        description="A Defender for Cloud or Entra ID Protection alert, with the vendor's "
        "severity, correlated with the user's recent sign-ins. One alert per vendor alert kind "
        "and resource or user per day: its volume is the vendors' (louder than one a day per "
        "1,000 users when Identity Protection flags many users), tuned in the vendor's portal.",
        severity=Severity.MEDIUM,
        technique="T1078",
        log_sets=frozenset({LogSet.THIRD_PARTY_ALERTS}),
        runbook="Follow the vendor's remediation steps; check the attached sign-ins for the "
        "same user.",
        loud=True,
    )
    config_type = PassthroughConfig

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Pass the vendor alert through."""
        vendor = event.vendor or event.product or "vendor"
        vendor_id = event.alert_id or event.correlation_id
        if vendor_id is None:
            ref = EventRef.of(event)
            vendor_id = (
                f"{ref.source_topic}:{ref.source_partition}:{ref.source_offset}:{ref.record_index}"
            )
        user = event.user or _upn(event.compromised_entity)
        name = event.alert_name or event.alert_type or "alert"
        context: dict[str, object] = {
            "vendor": vendor,
            # The latest; an alert standing for several lists them all (GATHERED_CONTEXT).
            "vendor_alert_id": vendor_id,
            "vendor_alert_ids": [vendor_id],
            "description": event.description,
            "remediation": event.remediation,
        }
        if user:
            lookback = timedelta(hours=self.config.signin_lookback_hours)
            context["recent_signins"] = ctx.baseline(user).recent_signins(event.timestamp, lookback)
        who = user or event.compromised_entity or event.source_ip or "tenant"
        yield Finding(
            entity=f"{vendor}|{name}|{who}",
            title=f"{vendor}: {name} ({who})",
            at=event.timestamp,
            evidence=[EventRef.of(event)],
            user=user,
            source_ip=event.source_ip,
            severity=_VENDOR_SEVERITY.get((event.severity or "").upper(), self.meta.severity),
            context=context,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """A Defender alert fires; a sign-in does not reach the rule."""
        alert = example_event(
            LogSet.THIRD_PARTY_ALERTS,
            alert_id="2517538088322968683_a1b2",
            alert_name="Suspicious PowerShell",
            severity="HIGH",
            vendor="Microsoft",
            product="Defender for Cloud",
        )
        signin = example_event(LogSet.INGRESS_AUTHENTICATION, result="SUCCESS", user="a@b.com")
        return (
            Example("defender alert", [alert], fires=True),
            Example("plain sign-in", [signin], fires=False),
        )


def _upn(entity: str | None) -> str | None:
    return entity.lower() if entity and "@" in entity else None


RULES = (VendorAlert,)
