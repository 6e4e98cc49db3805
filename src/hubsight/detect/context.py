"""One rule's view of the engine's state: its windows, the baselines, the learning period."""

from __future__ import annotations

from datetime import datetime, timedelta

from hubsight.detect.baseline import UserBaseline, from_epoch
from hubsight.detect.state import EngineState
from hubsight.detect.windows import Window


def shared_id(name: str, rule_id: str, *, own: bool) -> str:
    """Where the shared window ``name`` is kept for ``rule_id``: with the windows of every rule
    sharing it, or the rule's own (``own``: a rule with exceptions). "~" begins no rule id."""
    return f"~{name}|{rule_id}" if own else f"~{name}"


class EngineContext:
    """One rule's view of the engine state (implements ``RuleContext``)."""

    __slots__ = (
        "_baseline_horizon",
        "_changed",
        "_lateness",
        "_learning",
        "_own",
        "_rule_id",
        "_shared",
        "_state",
        "_windows",
    )

    def __init__(
        self,
        rule_id: str,
        state: EngineState,
        *,
        lateness: timedelta,
        learning: timedelta,
        baseline_horizon: timedelta,
        own: bool = False,
    ) -> None:
        self._rule_id = rule_id
        # Whether the rule keeps shared windows of its own (see ``shared_id``).
        self._own = own
        self._shared: dict[str, str] = {}
        self._state = state
        self._lateness = lateness
        self._learning = learning.total_seconds()
        self._baseline_horizon = baseline_horizon
        # Rules ask for windows a million times an hour: the two collections, at hand.
        self._windows = state.windows
        self._changed = state.dirty_windows

    @property
    def baseline_horizon(self) -> timedelta:
        """How far back baselines look."""
        return self._baseline_horizon

    @property
    def lateness(self) -> timedelta:
        """How late events may arrive."""
        return self._lateness

    def window(self, key: str) -> Window:
        """The rule's window for ``key``; saved at the end of the batch if it changed."""
        wkey = (self._rule_id, key)
        window = self._windows.get(wkey)
        if window is None:
            window = self._windows[wkey] = Window(key=wkey, changed=self._changed)
        return window

    def shared_window(self, name: str, key: str) -> Window:
        """The shared window ``name`` for ``key`` (see ``shared_id``)."""
        wid = self._shared.get(name)
        if wid is None:
            wid = self._shared[name] = shared_id(name, self._rule_id, own=self._own)
        wkey = (wid, key)
        window = self._windows.get(wkey)
        if window is None:
            window = self._windows[wkey] = Window(key=wkey, changed=self._changed)
        return window

    @property
    def own(self) -> bool:
        """Whether the rule keeps its shared windows apart (it has exceptions)."""
        return self._own

    def baseline(self, subject: str) -> UserBaseline:
        """The baseline of ``subject`` (empty when never seen)."""
        return self._state.baselines.get(subject) or UserBaseline()

    def learning(self, at: datetime) -> bool:
        """Whether ``at`` is inside the learning period."""
        started = self._state.started
        return started is None or at.timestamp() < started + self._learning

    def sources(self) -> dict[tuple[str, str], datetime]:
        """Last arrival per (log name, category)."""
        return {key: from_epoch(ts) for key, ts in self._state.sources.items()}
