"""Scoring detections against a generator's ground truth: what was caught, what was noise.

The simulator (``hubsight simulate --truth``) names, per planted scenario, the records it wrote
and the ids of the rules that should fire (``expect``). An expectation is met when an alert of
that rule cites at least one of the scenario's records as evidence. Alerts that cite no
planted record are background alerts: the false-positive figure to drive down.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hubsight.detect.alerts import Alert
from hubsight.detect.ruleset import rule_classes

# A record of the generator: (message sequence, index in the message).
Position = tuple[int, int]


@dataclass(slots=True)
class Coverage:
    """Expectations met and missed, and alerts on background traffic per rule."""

    detected: list[tuple[str, str]] = field(default_factory=list)
    missed: list[tuple[str, str]] = field(default_factory=list)
    # Expectations naming a rule that is not shipped.
    unmapped: list[tuple[str, str]] = field(default_factory=list)
    background: Counter[str] = field(default_factory=Counter)


def score(alerts: Iterable[Alert], truth: Iterable[Mapping[str, Any]]) -> Coverage:
    """Match alerts to the scenarios of ``truth`` by the records they cite."""
    known = {cls.meta.id for cls in rule_classes()}
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
            if expect not in known:
                coverage.unmapped.append(label)
            elif cited.get(expect, set()) & records:
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
