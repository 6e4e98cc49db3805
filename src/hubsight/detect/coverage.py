"""Scoring detections against a generator's ground truth: what was caught, what was noise.

The simulator (``hubsight simulate --truth``) names, per planted scenario, the records it wrote
and the conclusions a detection should reach (``expect``). An expectation is met when an alert of
the matching rule cites at least one of the scenario's records as evidence. Alerts that cite no
planted record are background alerts: the false-positive figure to drive down.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hubsight.detect.alerts import Alert

# The generator's expectation names -> the rule that must conclude it (None: a sample event
# the issue asks to generate, which no rule alerts on).
EXPECTATIONS: Mapping[str, str | None] = {
    "brute_force": "auth.brute_force",
    "brute_force_success": "auth.brute_force_success",
    "password_spray": "auth.password_spray",
    "impossible_travel": "auth.impossible_travel",
    "new_country": "auth.new_country",
    "mfa_fatigue": "auth.mfa_fatigue",
    "disabled_account_signin": "auth.disabled_account",
    "privileged_role_granted": "admin.privileged_role_granted",
    "app_credential_added": "admin.app_credential_added",
    "diagnostic_setting_deleted": "azure.log_tampering",
    "eventhub_deleted": "azure.log_tampering",
    "keys_listed": "azure.access_keys_listed",
    "third_party_alert": "thirdparty.vendor_alert",
    "vm_start_stop": None,
}

# A record of the generator: (message sequence, index in the message).
Position = tuple[int, int]


@dataclass(slots=True)
class Coverage:
    """Expectations met and missed, and alerts on background traffic per rule."""

    detected: list[tuple[str, str]] = field(default_factory=list)
    missed: list[tuple[str, str]] = field(default_factory=list)
    unmapped: list[tuple[str, str]] = field(default_factory=list)
    background: Counter[str] = field(default_factory=Counter)


def score(alerts: Iterable[Alert], truth: Iterable[Mapping[str, Any]]) -> Coverage:
    """Match alerts to the scenarios of ``truth`` by the records they cite."""
    alerts = list(alerts)
    cited: dict[str, set[Position]] = {}
    for alert in alerts:
        cited.setdefault(alert.rule_id, set()).update(_positions(alert))
    coverage = Coverage()
    planted: set[Position] = set()
    for entry in truth:
        records = {(int(r["message"]), int(r["index"])) for r in entry["records"]}
        planted |= records
        for expect in entry["expect"]:
            label = (entry["scenario"], expect)
            rule_id = EXPECTATIONS.get(expect)
            if rule_id is None:
                coverage.unmapped.append(label)
            elif cited.get(rule_id, set()) & records:
                coverage.detected.append(label)
            else:
                coverage.missed.append(label)
    for alert in alerts:
        if not _positions(alert) & planted:
            coverage.background[alert.rule_id] += 1
    return coverage


def _positions(alert: Alert) -> set[Position]:
    return {
        (ref.source_offset, ref.record_index)
        for ref in alert.evidence
        if ref.source_offset is not None and ref.record_index is not None
    }
