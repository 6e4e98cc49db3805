"""A ``RuleContext`` for rules evaluated on their own, outside an engine."""

from __future__ import annotations

from datetime import datetime, timedelta

from hubsight.detect.base import Baseline
from hubsight.detect.windows import Window


class NoContext:
    """The engine's state for a rule that reads none (a single-event Sigma rule): any use of it
    fails the test. Tests that give a rule some state override what it reads."""

    @property
    def baseline_horizon(self) -> timedelta:
        raise AssertionError("the rule read the baseline horizon")

    @property
    def lateness(self) -> timedelta:
        raise AssertionError("the rule read the lateness")

    def window(self, key: str) -> Window:
        raise AssertionError(f"the rule read the window of {key!r}")

    def shared_window(self, name: str, key: str) -> Window:
        raise AssertionError(f"the rule read the shared window {name!r} of {key!r}")

    def baseline(self, subject: str) -> Baseline:
        raise AssertionError(f"the rule read the baseline of {subject!r}")

    def learning(self, at: datetime) -> bool:
        raise AssertionError("the rule asked about the learning period")

    def sources(self) -> dict[tuple[str, str], datetime]:
        raise AssertionError("the rule read the sources")
