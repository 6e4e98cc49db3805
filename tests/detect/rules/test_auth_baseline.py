"""Impossible travel beyond its examples: where ``window_hours`` cuts the pairs it judges.

At the default speed limit (900 km/h) any two places on Earth are less than 23 hours apart, so
the 24-hour window never decides a pair; it does once the limit is lowered: Berlin to Lagos
(5,204 km) at 150 km/h would take 35 hours, and the window stops the look at 24.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hubsight.detect.alerts import Alert
from hubsight.detect.base import numbered
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_baseline import ImpossibleTravel
from hubsight.detect.rules.signals import signin
from hubsight.detect.ruleset import build_rule

DAY = 1440
SECOND = 1 / 60


def _lagos_after(minutes: float) -> list[Alert]:
    """The alerts of a sign-in from Berlin, then one from Lagos ``minutes`` later."""
    lagos = signin(minutes, country="NG", lat=6.45, lon=3.39, ip="102.89.1.1")
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        [build_rule(ImpossibleTravel, {"max_speed_kmh": 150})],
        options=EngineOptions(persist=False, learning=timedelta(0)),
    )
    alerts = engine.process(numbered([signin(0), lagos]))
    engine.db.close()
    return alerts


def test_a_pair_a_second_inside_the_window_is_judged() -> None:
    (alert,) = _lagos_after(DAY - SECOND)
    assert alert.rule_id == "auth.impossible_travel"
    assert len(alert.evidence) == 2


def test_a_pair_window_hours_apart_is_not_judged() -> None:
    assert _lagos_after(DAY) == []
