"""Health of one event source, written by its collector and read by ``status`` and the API."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from hubsight.parsing.pipeline import ParseCounters
from hubsight.sources.base import PartitionLag
from hubsight.sources.diagnose import Diagnosis, Problem


class State(StrEnum):
    """What a source is doing."""

    STARTING = "starting"
    RUNNING = "running"
    WAITING = "waiting for data"
    # Connected, but the broker has stopped answering.
    STALLED = "stalled"
    ERROR = "error"
    DISABLED = "disabled"
    STOPPED = "stopped"


log = logging.getLogger(__name__)

_NOTICES_KEPT = 20
# Events per minute are counted over this sliding window.
_RATE_WINDOW_S = 60.0
# Events stored per clock minute are kept this many minutes (Data Collection's sparklines).
HISTORY_MINUTES = 60


@dataclass(frozen=True, slots=True)
class DetectionLag:
    """Detection behind what a source stored: catching up, or failing to (``problem``)."""

    # Stored events it has yet to process, counted when its catch-up began and counted down as
    # it processes them (``catchup.count_beyond``); None before. At least this many, not
    # exactly: a batch stored after the count (each collector stores one, then waits for the
    # catch-up to hand it over) is not in it, and once read it takes the figure down to 0, no
    # further. Exact, it would cost a count of the event store each time health is written
    # (every second) beside the catch-up's own reads, and would still miss a batch stored
    # between that count and the display. (Events retention deletes before the catch-up
    # reaches them stay in the figure until it ends: they are never processed either.)
    events: int | None = None
    problem: str | None = None

    def message(self) -> str:
        """What a user reads beside the source's state."""
        waiting = ""
        if self.events:
            waiting = f": at least {self.events:,} event{'s' if self.events > 1 else ''} behind"
        if self.problem is None:
            return f"detection catching up{waiting}"
        return (
            f"detection behind{waiting}; it cannot read them back from the event store "
            f"({self.problem}) and tries again every minute; nothing stored is lost"
        )


@dataclass
class SourceHealth:
    """Thread-safe health record of one source."""

    name: str
    state: State = State.STARTING
    last_error: str | None = None
    problem: Problem | None = None
    hint: str | None = None
    last_error_time: datetime | None = None
    last_event_time: datetime | None = None
    events_stored: int = 0
    bytes_received: int = 0
    unparsed_by_category: dict[str, int] = field(default_factory=dict)
    unparsed_dropped: int = 0
    repairs: dict[str, int] = field(default_factory=dict)
    lag: list[PartitionLag] = field(default_factory=list)
    # Things a user should know that are not errors (a re-created topic), newest last.
    notices: list[tuple[datetime, str]] = field(default_factory=list)
    # Set while detection has not processed everything the source stored.
    detection: DetectionLag | None = None
    _stored_times: deque[tuple[float, int]] = field(default_factory=deque)
    # (minute since the epoch, events stored in it), oldest first.
    _per_minute: deque[tuple[int, int]] = field(default_factory=deque)
    # Seconds since the epoch: the minutes above are wall-clock minutes (tests pass their own).
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_state(self, state: State) -> None:
        """Move to ``state`` (an error is left only by progress, see ``progress``)."""
        with self._lock:
            self.state = state

    def error(self, diagnosis: Diagnosis) -> None:
        """Record a problem; a generic 'brokers down' never hides a specific cause."""
        with self._lock:
            generic = diagnosis.problem is Problem.UNREACHABLE and self._generic(diagnosis.message)
            # librdkafka says "brokers are down" after the connection error that said why (refused,
            # timed out, name unknown): the cause stays, whichever problem it was.
            if generic and self.state is State.ERROR and not self._generic(self.last_error):
                return
            self.state = State.ERROR
            self.problem = diagnosis.problem
            self.last_error = diagnosis.message
            self.hint = diagnosis.hint
            self.last_error_time = datetime.now(UTC)

    @staticmethod
    def _generic(message: str | None) -> bool:
        return message is None or "brokers are down" in message

    def connected(self, *, waiting: bool) -> None:
        """The consumer joined its group: running, or waiting for data when nothing flows."""
        with self._lock:
            self.state = State.WAITING if waiting else State.RUNNING

    def waiting(self, diagnosis: Diagnosis) -> None:
        """Connected, but no data: show why that may be."""
        with self._lock:
            if self.state is State.ERROR:
                return
            self.state = State.WAITING
            self.problem = diagnosis.problem
            self.hint = diagnosis.hint

    def stalled(self, diagnosis: Diagnosis) -> None:
        """The broker stopped answering; an error already shown (an unreachable broker, a refused
        credential, the store) is the more precise, and stays."""
        with self._lock:
            if self.state is State.ERROR:
                return
            self.state = State.STALLED
            self.problem = diagnosis.problem
            self.last_error = diagnosis.message
            self.hint = diagnosis.hint
            self.last_error_time = datetime.now(UTC)

    def answering(self, *, waiting: bool) -> None:
        """The broker answers again: back to running (or waiting for data) if it was stalled."""
        with self._lock:
            if self.state is State.STALLED:
                self.state = State.WAITING if waiting else State.RUNNING
                self.problem = None
                self.hint = None

    def stored(self, events: int, payload_bytes: int, last_event: datetime | None) -> None:
        """A batch was durably stored."""
        now = time.monotonic()
        with self._lock:
            self.state = State.RUNNING
            if self.problem in (Problem.NO_DATA, Problem.STALLED):
                self.problem = None
                self.hint = None
            self.events_stored += events
            self.bytes_received += payload_bytes
            if last_event is not None and (
                self.last_event_time is None or last_event > self.last_event_time
            ):
                self.last_event_time = last_event
            self._stored_times.append((now, events))
            while self._stored_times and self._stored_times[0][0] < now - _RATE_WINDOW_S:
                self._stored_times.popleft()
            minute = int(self.clock() // 60)
            if self._per_minute and self._per_minute[-1][0] == minute:
                self._per_minute[-1] = (minute, self._per_minute[-1][1] + events)
            else:
                self._per_minute.append((minute, events))
            while self._per_minute[0][0] <= minute - HISTORY_MINUTES:
                self._per_minute.popleft()

    def notice(self, message: str) -> None:
        """Record (and log) something that happened to the source; the last 20 are kept."""
        log.warning("%s: %s", self.name, message)
        with self._lock:
            self.notices.append((datetime.now(UTC), message))
            del self.notices[:-_NOTICES_KEPT]

    def set_detection(self, lag: DetectionLag | None) -> None:
        """Whether (and how far) detection is behind what this source stored."""
        with self._lock:
            self.detection = lag

    def set_lag(self, lag: list[PartitionLag]) -> None:
        """Replace the per-partition lag figures."""
        with self._lock:
            self.lag = sorted(lag, key=lambda p: (p.topic, p.partition))

    def set_parse_counters(self, counters: ParseCounters) -> None:
        """Take the parser's counts: unparsed records per category, dropped ones, repairs."""
        with self._lock:
            self.unparsed_by_category = dict(counters.unparsed_by_category)
            self.unparsed_dropped = counters.dropped_unparsed
            self.repairs = dict(counters.repairs)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy, in the shape of ``hubsight status --json``."""
        now = time.monotonic()
        with self._lock:
            recent = sum(n for t, n in self._stored_times if t >= now - _RATE_WINDOW_S)
            return {
                "name": self.name,
                "state": self.state.value,
                "events_stored": self.events_stored,
                "events_per_minute": recent,
                "events_per_minute_history": self._history(),
                "bytes_received": self.bytes_received,
                "last_event_time": _iso(self.last_event_time),
                "lag": [
                    {
                        "topic": p.topic,
                        "partition": p.partition,
                        "committed": p.committed,
                        "high_watermark": p.high_watermark,
                        "lag": p.lag,
                    }
                    for p in self.lag
                ],
                "last_error": self.last_error,
                "last_error_time": _iso(self.last_error_time),
                "problem": self.problem.value if self.problem else None,
                "hint": self.hint,
                "unparsed_by_category": dict(self.unparsed_by_category),
                "unparsed_dropped": self.unparsed_dropped,
                "repairs": dict(self.repairs),
                "notices": [{"time": _iso(t), "message": m} for t, m in self.notices],
                "detection": None
                if self.detection is None
                else {
                    "events_behind": self.detection.events,
                    "problem": self.detection.problem,
                    "message": self.detection.message(),
                },
            }

    def _history(self) -> list[list[Any]]:
        """[minute (ISO), events stored in it] for each of the last ``HISTORY_MINUTES`` clock
        minutes up to the current one, zero where nothing was stored."""
        now = int(self.clock() // 60)
        counts = dict(self._per_minute)
        return [
            [_iso(datetime.fromtimestamp(m * 60, UTC)), counts.get(m, 0)]
            for m in range(now - HISTORY_MINUTES + 1, now + 1)
        ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
