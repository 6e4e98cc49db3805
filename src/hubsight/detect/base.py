"""The detection stage's contract: a rule reads normalized events and reports findings.

A rule is a class carrying its metadata (``RuleMeta``), its thresholds as a typed, frozen
``RuleConfig``, its own positive and negative examples, and ``evaluate``. ``evaluate`` sees one
event at a time together with a ``RuleContext`` (windows and baselines persisted by the engine)
and yields ``Finding``s; the engine turns findings into deduplicated alerts.

Rules must be order-independent over event time: evaluating the same set of events in any
arrival order (within the lateness window) must yield the same findings. Window helpers in
``hubsight.detect.windows`` re-check every window a late event falls into, so rules built on them
get this for free. Rules that ask "is this new?" of a baseline retract (``Finding.retract``) what
a late, earlier event shows untrue.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Generic,
    NamedTuple,
    Protocol,
    TypeVar,
    runtime_checkable,
)

import msgspec
from pydantic import BaseModel, ConfigDict, Field

from hubsight.parsing.event import Event, LogSet

if TYPE_CHECKING:
    from hubsight.detect.windows import Window


class Severity(StrEnum):
    """Alert severities, highest first."""

    CRITICAL = "Critical"
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"
    INFO = "Info"

    @property
    def rank(self) -> int:
        """4 for Critical down to 0 for Info, for comparisons."""
        return _RANKS[self]


_RANKS = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


# Windows and alerts hold hundreds of thousands of these: with gc=False the cyclic garbage
# collector skips them (they hold only atoms, so they cannot form a cycle), which made its
# full passes take a quarter of the engine's time. The order is ``ref_order``'s, not msgspec's
# field by field, which raised TypeError on two refs equal up to a field None in one of them.
class EventRef(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Where a stored event is: enough to find it again in Log Search. Totally ordered."""

    timestamp: datetime
    log_name: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    record_index: int | None
    log_set: str | None = None

    @classmethod
    def of(cls, event: Event) -> EventRef:
        """The reference of ``event``."""
        return cls(
            timestamp=event.timestamp,
            log_name=event.log_name,
            source_topic=event.source_topic,
            source_partition=event.source_partition,
            source_offset=event.source_offset,
            record_index=event.record_index,
            # The member's own string, shared by every reference: str() made a copy for each
            # (68 bytes of every window entry).
            log_set=event.log_set.value,
        )

    def __lt__(self, other: EventRef) -> bool:
        return ref_order(self) < ref_order(other)

    def __le__(self, other: EventRef) -> bool:
        return ref_order(self) <= ref_order(other)

    def __gt__(self, other: EventRef) -> bool:
        return ref_order(self) > ref_order(other)

    def __ge__(self, other: EventRef) -> bool:
        return ref_order(self) >= ref_order(other)

    def as_dict(self) -> dict[str, Any]:
        """The reference as the JSON object the CLI and the API show."""
        return {
            "log_name": self.log_name,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "record_index": self.record_index,
            "log_set": self.log_set,
            "timestamp": self.timestamp.isoformat(),
        }


def ref_order(ref: EventRef) -> tuple[Any, ...]:
    """The sort key of ``ref``: its fields in order, a None before any value of its field.

    As a ``key=`` it sorts refs faster than their comparisons do (one key per ref).
    """
    return (
        ref.timestamp,
        ref.log_name,
        ref.source_topic is not None,
        ref.source_topic or "",
        ref.source_partition is not None,
        ref.source_partition or 0,
        ref.source_offset is not None,
        ref.source_offset or 0,
        ref.record_index is not None,
        ref.record_index or 0,
        ref.log_set is not None,
        ref.log_set or "",
    )


@dataclass(slots=True, kw_only=True)
class Finding:
    """What a rule reports; the engine folds findings with the same dedup key into one alert."""

    # The thing the alert is about (a user, an IP, a vendor alert id); part of the dedup key.
    entity: str
    title: str
    # Event time that places the finding in its dedup bucket.
    at: datetime
    evidence: Sequence[EventRef]
    user: str | None = None
    source_ip: str | None = None
    severity: Severity | None = None
    baseline: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    # When set, the dedup key ignores time buckets (e.g. a vendor's own alert id).
    stable_key: bool = False
    # A late event showed an earlier finding untrue: its evidence leaves the alert, and an
    # alert left without evidence is withdrawn (see ``DetectionEngine.withdrawn``).
    retract: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleMeta:
    """What a rule is, for people and for the engine."""

    id: str
    title: str
    description: str
    severity: Severity
    technique: str
    log_sets: frozenset[LogSet]
    runbook: str
    # Notables do not alert alone: they go on the user's timeline and into later alerts.
    notable: bool = False
    # Baseline rules stay silent during the learning period.
    uses_baseline: bool = False
    # Windowed rules skip events older than the lateness allows: their windows are gone.
    windowed: bool = False
    # The normalized ``result`` values the rule reads (None: all). The engine only hands the
    # rule events with these results, which spares most rules most events.
    results: frozenset[str] | None = None
    # The rule reads only events naming a user, which spares it service principal sign-ins.
    needs_user: bool = False
    # What part of Azure the rule watches (a key of ``hubsight.detect.families.FAMILIES``);
    # empty for built-in rules, whose family ``families.family_of`` knows by id.
    family: str = ""
    # ATT&CK tactics (``defense-evasion``, ...), for rules that name them (Sigma tags do).
    tactics: tuple[str, ...] = ()
    # Louder than the noise budget (one alert a day per 1,000 users on everyday traffic) by
    # design; the description says why. ``bench/detect.py`` shows such rules apart.
    loud: bool = False


class EventKind(NamedTuple):
    """The fields the engine sorts events by before it hands them to rules (see ``Rule.reads``)."""

    log_set: LogSet
    result: str | None
    operation: str | None
    # Whether ``event.user`` is set (and not empty).
    has_user: bool
    # The record's category and a sign-in's error code (None: not told, so not excluded).
    category: str | None = None
    error_code: int | None = None


# The bounds of a rule's settings. A count, window or look-back of 0 means nothing, so each takes at
# least one unit; a duration stops at ten years, so that a typo is refused when it is entered rather
# than overflowing a timedelta when the rule runs. A subclass that changes a default keeps the bound
# by declaring the field with the same type (``count: Count = 5``).
TEN_YEARS_DAYS = 3650
Count = Annotated[int, Field(ge=1, le=1_000_000)]
Minutes = Annotated[int, Field(ge=1, le=TEN_YEARS_DAYS * 24 * 60)]
Hours = Annotated[int, Field(ge=1, le=TEN_YEARS_DAYS * 24)]
Days = Annotated[int, Field(ge=1, le=TEN_YEARS_DAYS)]


class RuleConfig(BaseModel):
    """Thresholds of a rule; unknown keys are rejected so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Findings of one entity inside one bucket of this many minutes update a single alert.
    dedup_minutes: Minutes = 60


@dataclass(frozen=True, slots=True)
class Example:
    """A sequence of events and whether the rule must fire on it."""

    name: str
    events: Sequence[Event]
    fires: bool
    # For rules that watch arrival (platform rules): when to check after the events arrived.
    check_at: datetime | None = None
    # How many alerts it must raise, where more than whether matters: a flow used again one
    # second after its look-back raises an alert of its own, at the look-back's edge it does not.
    alerts: int | None = None
    # The severity every alert it raises must have, where the rule grades what it finds (an
    # open port from the Internet is high, from one named address low).
    severity: Severity | None = None

    def met_by(self, raised: int) -> bool:
        """Whether raising ``raised`` alerts is what the example expects."""
        return raised == self.alerts if self.alerts is not None else (raised > 0) is self.fires

    def met(self, severities: Sequence[Severity]) -> bool:
        """Whether alerts of these severities are what the example expects: their number
        (``met_by``) and, when it names one, the severity of each."""
        graded = self.severity is None or all(s is self.severity for s in severities)
        return self.met_by(len(severities)) and graded


class Baseline(Protocol):
    """What has been seen for one user or service principal, by kind (country, ip, asn, ...)."""

    def seen(self, kind: str, value: str, at: datetime, horizon: timedelta) -> bool:
        """Whether ``value`` of ``kind`` was seen in the ``horizon`` before ``at``."""
        ...

    def known(self, kind: str, at: datetime, horizon: timedelta) -> list[str]:
        """The values of ``kind`` seen in the ``horizon`` before ``at``, sorted."""
        ...

    def has_history(self, kind: str, at: datetime, horizon: timedelta) -> bool:
        """Whether anything of ``kind`` was seen in the ``horizon`` before ``at``."""
        ...

    def starts_after(self, kind: str, at: datetime) -> bool:
        """Whether some value of ``kind`` began its latest episode after ``at`` (or may have)."""
        ...

    def recent_signins(self, at: datetime, horizon: timedelta) -> list[dict[str, Any]]:
        """Successful sign-ins in the ``horizon`` before ``at``, oldest first."""
        ...


@runtime_checkable
class EventMatcher(Protocol):
    """A rule that judges each event alone (no windows, baselines or time): ``match`` is
    not None for the events it reports on. A hunt replays such a rule over stored events and
    counts what it matches, whether it is Sigma or Python."""

    def match(self, event: Event) -> object | None:
        """What the rule found in ``event`` (None: nothing)."""
        ...


class RuleContext(Protocol):
    """The engine's state as a rule sees it."""

    @property
    def baseline_horizon(self) -> timedelta:
        """How far back baselines look (90 days by default)."""
        ...

    @property
    def lateness(self) -> timedelta:
        """How late events may arrive (24 h by default); older ones have all arrived."""
        ...

    def window(self, key: str) -> Window:
        """The persisted, time-ordered window of this rule for ``key`` (created when absent)."""
        ...

    def shared_window(self, name: str, key: str) -> Window:
        """The window ``name`` for ``key`` of every rule that shares it (``Rule.shares``).

        Rules adding the same entries to it (the same events, values and keys) keep them once,
        for as long as the one retaining longest needs. A rule with exceptions keeps a window
        of its own instead: its exceptions keep entries out that the others count.
        """
        ...

    def baseline(self, subject: str) -> Baseline:
        """The baseline of a user (lower-cased UPN) or service principal (``sp:<app id>``)."""
        ...

    def learning(self, at: datetime) -> bool:
        """Whether event time ``at`` is inside the silent learning period.

        The period starts at the earliest event time seen. A learning period longer than the
        lateness (or none) gives every event the same verdict in any delivery order; a shorter
        one may judge an event before a still earlier first event arrives.
        """
        ...

    def sources(self) -> dict[tuple[str, str], datetime]:
        """When each (log name, category) last delivered an event, by arrival time."""
        ...


C = TypeVar("C", bound=RuleConfig)


class Rule(ABC, Generic[C]):
    """A detection: metadata, typed thresholds, examples and the logic in ``evaluate``."""

    meta: ClassVar[RuleMeta]
    config_type: ClassVar[type[RuleConfig]] = RuleConfig

    def __init__(self, config: C) -> None:
        self.config = config

    def reads(self, kind: EventKind) -> bool:
        """Whether events of ``kind`` can concern the rule; the engine asks once per kind.

        By default: the log sets, results and ``needs_user`` of ``meta``. Rules that match
        operations narrow it further, so the engine never calls them for events they would
        ignore; it must never exclude an event ``evaluate`` could report on.
        """
        meta = self.meta
        return (
            kind.log_set in meta.log_sets
            and (meta.results is None or kind.result in meta.results)
            and (kind.has_user or not meta.needs_user)
        )

    @abstractmethod
    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Yield what ``event`` reveals, given the state in ``ctx``."""

    def correct(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """The corrections an event the rule's exceptions exclude makes to later findings.

        Excepted events raise nothing, yet they feed the baselines like any other: a late one
        can show a finding of a baseline rule untrue, or true. Other rules have nothing to do.
        """
        return ()

    def check(self, now: datetime, ctx: RuleContext) -> Iterable[Finding]:
        """Yield what the passing of time reveals (silence); most rules have nothing to say."""
        return ()

    def retention(self) -> timedelta:
        """How far behind the lateness horizon this rule's windows must keep entries."""
        return timedelta(0)

    def shares(self) -> frozenset[str]:
        """The names of the shared windows the rule uses (``RuleContext.shared_window``)."""
        return frozenset()

    def shared_from(self) -> dict[str, str]:
        """Per shared window, the prefix of the keys of the rule's own windows that held its
        entries before it was shared: the engine moves those into it when it starts."""
        return {}

    @classmethod
    @abstractmethod
    def examples(cls) -> Sequence[Example]:
        """Positive and negative examples; one parametrised test runs them all."""


_EXAMPLE_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def example_event(log_set: LogSet, minute: float = 0, *, offset: int = 0, **fields: Any) -> Event:
    """An event for a rule's examples: ``minute`` after a fixed start, at Kafka ``offset``."""
    return Event(
        timestamp=_EXAMPLE_START + timedelta(minutes=minute),
        log_set=log_set,
        log_name="example",
        raw=msgspec.Raw(fields.pop("raw", b"{}")),
        source_topic="example",
        source_partition=0,
        source_offset=offset,
        record_index=0,
        **fields,
    )


def numbered(events: Iterable[Event]) -> list[Event]:
    """``events`` with distinct offsets, so that each is a separate stored event."""
    out = list(events)
    for offset, event in enumerate(out):
        event.source_offset = offset
    return out
