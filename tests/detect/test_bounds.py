"""The engine's time bounds at their edges, with their defaults: an engine built from
``EngineOptions()`` and one opened from a data directory without ``detect.toml``.

Lateness (24 h): an event exactly that far behind the newest one still reaches windowed rules,
one a second further does not. Investigation window (24 h): an alert about the same user that
far after another joins its investigation, a second later it opens its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from hubsight.detect.alerts import Alert
from hubsight.detect.base import example_event, numbered
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_volume import BruteForce
from hubsight.detect.rules.signals import signin
from hubsight.detect.rules.thirdparty import VendorAlert
from hubsight.detect.ruleset import build_rule
from hubsight.detect.runtime import EngineRequest, open_engine
from hubsight.parsing.event import Event, LogSet

DAY = 1440
SECOND = 1 / 60
USER = "adele.vance@contoso.com"

Opener = Callable[[Path], DetectionEngine]


def _options_defaults(path: Path) -> DetectionEngine:
    """The engine with ``EngineOptions``' defaults and the two rules the tests need."""
    return DetectionEngine(
        DetectDB.in_dir(path),
        [build_rule(BruteForce, {}), build_rule(VendorAlert, {})],
        options=EngineOptions(learning=timedelta(0)),
    )


def _data_dir_defaults(path: Path) -> DetectionEngine:
    """The engine ``hubsight run`` opens on a data directory with no settings."""
    return open_engine(EngineRequest(data_dir=path, learning=timedelta(0)))


OPENERS = [
    pytest.param(_options_defaults, id="EngineOptions"),
    pytest.param(_data_dir_defaults, id="data-dir"),
]


def _alerts(engine: DetectionEngine, *batches: Sequence[Event]) -> list[Alert]:
    alerts = [alert for batch in batches for alert in engine.process(numbered(batch))]
    engine.close()
    return alerts


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize(("behind", "too_late"), [(DAY, 0), (DAY + SECOND, 1)])
def test_an_event_the_lateness_behind_the_newest_still_counts(
    tmp_path: Path, opener: Opener, behind: float, too_late: int
) -> None:
    """Ten failures, the first ``behind`` minutes before the newest event seen (another
    user's sign-in): a brute force when the first still counts."""
    newest = signin(DAY, "someone.else@contoso.com")
    failures = [signin(DAY - behind + m, USER, result="FAILED_BAD_PASSWORD") for m in range(10)]
    engine = opener(tmp_path)
    brute = [a for a in _alerts(engine, [newest], failures) if a.rule_id == "auth.brute_force"]
    assert engine.stats.too_late == too_late
    assert len(brute) == 1 - too_late


def _vendor_alert(minute: float, name: str, offset: int) -> Event:
    return example_event(
        LogSet.THIRD_PARTY_ALERTS,
        minute,
        offset=offset,
        alert_id=name,
        alert_name=name,
        severity="MEDIUM",
        vendor="Microsoft",
        user=USER,
    )


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize(("after", "investigations"), [(DAY, 1), (DAY + SECOND, 2)])
def test_an_alert_the_investigation_window_after_another_joins_it(
    tmp_path: Path, opener: Opener, after: float, investigations: int
) -> None:
    """Two vendor alerts of different kinds about one user, ``after`` minutes apart."""
    engine = opener(tmp_path)
    opened: dict[str, str] = {}
    for event in (_vendor_alert(0, "Unfamiliar sign-in", 1), _vendor_alert(after, "Leaked", 2)):
        assert engine.process([event])
        opened.update(engine.opened_investigations)
    engine.close()
    assert len(opened) == investigations
