"""The vendor alert rule beyond its examples: which of the user's sign-ins it attaches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hubsight.detect.base import example_event, numbered
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.signals import signin
from hubsight.detect.rules.thirdparty import VendorAlert
from hubsight.detect.ruleset import build_rule
from hubsight.parsing.event import LogSet

USER = "adele.vance@contoso.com"
# The vendor alert's time, in minutes after the examples' start: a day and a bit, so that
# sign-ins a day before it lie after the start.
AT = 2 * 1440


def _attached(*signin_minutes: float) -> list[str]:
    """The times of the sign-ins the default rule attaches to a vendor alert about ``USER``."""
    alert = example_event(
        LogSet.THIRD_PARTY_ALERTS,
        AT,
        alert_id="a1",
        alert_name="Unfamiliar sign-in properties",
        severity="MEDIUM",
        vendor="Microsoft",
        user=USER,
    )
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        [build_rule(VendorAlert, {})],
        options=EngineOptions(persist=False, learning=timedelta(0)),
    )
    (found,) = engine.process(numbered([*(signin(m, USER) for m in signin_minutes), alert]))
    engine.db.close()
    return [s["time"] for s in found.context["recent_signins"]]


def test_a_signin_a_day_before_is_attached_and_one_a_second_earlier_is_not() -> None:
    edge, outside = AT - 1440, AT - 1440 - 1 / 60
    assert _attached(outside, edge) == [signin(edge).timestamp.isoformat()]


def test_a_signin_after_the_vendor_alert_is_not_attached() -> None:
    assert _attached(AT + 1) == []
