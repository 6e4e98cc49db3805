"""Hunting: run a Sigma rule over stored events and say what it would have raised, and where.

A built-in rule that judges each event alone (an ``EventMatcher``: the network exposure rules)
is hunted the same way; the others keep windows and baselines a replay cannot rebuild.

The store is asked only for the events of the rule's log sets in the window (the events table
is ordered by log set and time, so that read skips the rest), a day at a time in event-time
order. They go through a detection engine of their own, in memory, holding only the hunted
rules, so a single-event rule's one-alert-per-entity-per-hour grouping and a correlation's
windows, group-by and thresholds give exactly the alerts the live engine would have raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight.detect.alerts import Alert
from hubsight.detect.base import EventMatcher, Rule
from hubsight.detect.content import ShippedRule, content_rules
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.replay import event_of_row
from hubsight.detect.rules import BUILTIN_RULES
from hubsight.detect.ruleset import build_rule, rule_classes, rules_dir_default
from hubsight.detect.sigma import SigmaDetection, SigmaLoad, load_sigma_file, load_sigma_rules
from hubsight.detect.sigma.correlation import SigmaCorrelation
from hubsight.detect.sigma.detection import SigmaConfig
from hubsight.detect.sigma.leql import rule_leql
from hubsight.errors import ConfigError, NotFoundError
from hubsight.parsing.event import Event, LogSet
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

_DAY = timedelta(days=1)
_TOP = 10


@dataclass(slots=True)
class HuntResult:
    """What the hunted rules would have raised over the window."""

    rules: list[str]
    start: datetime
    end: datetime
    events_read: int = 0
    # Events a single-event rule or a correlation's base rule matched.
    matched_events: int = 0
    alerts: list[Alert] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The shape ``rules hunt --format json`` and the API print."""
        users = Counter(a.user for a in self.alerts if a.user)
        addresses = Counter(a.source_ip for a in self.alerts if a.source_ip)
        return {
            "rules": self.rules,
            "from": _iso(self.start),
            "to": _iso(self.end),
            "events_read": self.events_read,
            "matched_events": self.matched_events,
            "alert_count": len(self.alerts),
            "by_rule": dict(sorted(Counter(a.rule_id for a in self.alerts).items())),
            "top_users": [[u, n] for u, n in users.most_common(_TOP)],
            "top_source_ips": [[ip, n] for ip, n in addresses.most_common(_TOP)],
            "alerts": [
                {
                    "rule_id": a.rule_id,
                    "title": a.title,
                    "severity": str(a.severity),
                    "first_event_time": _iso(a.first_event_time),
                    "last_event_time": _iso(a.last_event_time),
                    "events": len(a.evidence),
                    "user": a.user,
                    "source_ip": a.source_ip,
                }
                for a in self.alerts
            ],
        }


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _shipped(target: str) -> type[ShippedRule] | None:
    """The shipped rule whose id is ``target`` (None when there is none)."""
    return next(
        (c for c in content_rules() if issubclass(c, ShippedRule) and c.meta.id == target), None
    )


def replayable_ids() -> frozenset[str]:
    """The ids of the built-in rules a hunt replays (``EventMatcher``s), for the console."""
    return frozenset(c.meta.id for c in BUILTIN_RULES if issubclass(c, EventMatcher))


def _replayable(target: str) -> type[Rule[Any]] | None:
    """The built-in rule ``target`` names when it judges each event alone (an
    ``EventMatcher``: a hunt replays it like a single-event Sigma rule), else None."""
    return next(
        (c for c in BUILTIN_RULES if c.meta.id == target and issubclass(c, EventMatcher)), None
    )


def _loads(data_dir: Path, target: str, *, files: bool) -> list[SigmaLoad]:
    """The documents ``target`` names: a Sigma file's (when ``files``), or the imported one."""
    path = Path(target)
    # The API passes files=False: a path would let a console account load any readable file.
    if files and path.is_file():
        return load_sigma_file(path)
    folder = rules_dir_default(data_dir)
    loads = load_sigma_rules(folder) if folder.is_dir() else []
    found = [load for load in loads if load.rule is not None and load.rule.meta.id == target]
    if not found and any(cls.meta.id == target for cls in rule_classes()):
        # A built-in rule is Python, not Sigma: it exists, so "no rule named" would be untrue.
        raise ConfigError(
            f"{target} is a built-in rule written in Python, not Sigma: it can be neither "
            "hunted nor shown as LEQL",
            hint="hunt a Sigma rule (shipped content or imported), or search the logs it reads "
            "in Log Search",
        )
    if not found:
        raise NotFoundError(
            f"no Sigma rule file, shipped rule or imported Sigma rule named {target!r}",
            hint="give a Sigma file, or a Sigma rule's id from `hubsight rules list` (shipped, "
            "or imported with `hubsight rules import sigma`)",
        )
    return found


def hunt_rules(
    data_dir: Path, target: str, *, files: bool = True, shown: str | None = None
) -> Sequence[Rule[Any]]:
    """The rules ``target`` names: every rule of a Sigma file, a shipped or an imported rule.

    ``shown`` names the target in errors (a file written for the API's text is not the user's).
    """
    shipped = _shipped(target)
    if shipped is not None:
        return [shipped(SigmaConfig())]
    replayable = _replayable(target)
    if replayable is not None:
        # With its default settings, as a shipped Sigma rule is hunted.
        return [build_rule(replayable, {})]
    loads = _loads(data_dir, target, files=files)
    rules = [load.rule for load in loads if load.rule is not None]
    if not rules:
        raise ConfigError(f"no rule of {shown or target} loads: {_reasons(loads)}",
                          hint="hunt a Sigma rule of the azure product")  # fmt: skip
    return rules


def hunt_leql(data_dir: Path, target: str, *, files: bool = True) -> str:
    """The LEQL query of a single-event rule, to open in Log Search."""
    shipped = _shipped(target)
    if shipped is not None:
        places = [(shipped.path, shipped.document)] if _detection(shipped.loaded) else []
    elif _replayable(target) is not None:
        raise ConfigError(
            f"{target} is a built-in rule written in Python: it has no LEQL form (it judges "
            "each rule of a write whole, which a search of fields cannot)",
            hint=f"hunt it instead: hubsight rules hunt {target}",
        )
    else:
        places = [
            (load.path, load.document)
            for load in _loads(data_dir, target, files=files)
            if _detection(load.rule)
        ]
    if not places:
        raise ConfigError(
            f"{target} is not a single-event Sigma rule: a correlation has no LEQL form",
            hint="hunt it instead: hubsight rules hunt RULE_OR_FILE",
        )
    return rule_leql(*places[0])


def _detection(rule: Rule[Any] | None) -> SigmaDetection | None:
    """The single-event Sigma rule ``rule`` is or runs (a shipped one runs its loaded rule)."""
    if isinstance(rule, ShippedRule):
        rule = rule.loaded
    return rule if isinstance(rule, SigmaDetection) else None


def _matchers(rules: Sequence[Rule[Any]]) -> list[EventMatcher]:
    """The single-event rules whose matches a hunt counts: the hunted ones (Sigma, or built-in
    ones judging each event alone) and the base rules of hunted correlations (else a
    correlation's alerts came "from 0 matching events")."""
    found: dict[str, EventMatcher] = {}
    for rule in rules:
        loaded = rule.loaded if isinstance(rule, ShippedRule) else rule
        bases = loaded.base_detections if isinstance(loaded, SigmaCorrelation) else ()
        detection = _detection(rule)
        if detection is not None:
            found.setdefault(detection.meta.id, detection)
        elif isinstance(rule, EventMatcher):
            found.setdefault(rule.meta.id, rule)
        for base in bases:
            found.setdefault(base.meta.id, base)
    return list(found.values())


def _reasons(loads: Sequence[SigmaLoad]) -> str:
    return "; ".join(f"document {load.document}: {load.reason}" for load in loads)


def hunt(
    store: EventStore,
    rules: Sequence[Rule[Any]],
    start: datetime,
    end: datetime,
    *,
    lateness: timedelta = timedelta(hours=24),
) -> HuntResult:
    """Replay the window's events of the rules' log sets through an engine of these rules."""
    if end <= start:
        raise ConfigError(
            f"the hunt's start {_iso(start)} is not before its end {_iso(end)}",
            hint="give the earlier time to --from, or use --last 90d",
        )
    engine = DetectionEngine(
        DetectDB(Path(":memory:")), rules, options=EngineOptions(lateness=lateness, persist=False)
    )
    result = HuntResult(rules=[r.meta.id for r in rules], start=start, end=end)
    detections = _matchers(rules)
    final: dict[str, Alert] = {}
    log_sets = sorted({str(s) for r in rules for s in r.meta.log_sets})
    for batch in _events(store, log_sets, start, end):
        result.events_read += len(batch)
        result.matched_events += sum(
            1 for event in batch if any(d.match(event) is not None for d in detections)
        )
        for alert in engine.process(batch):
            final[alert.id] = alert
        for withdrawn in engine.withdrawn:
            final.pop(withdrawn, None)
    result.alerts = sorted(final.values(), key=lambda a: (a.first_event_time, a.rule_id, a.id))
    return result


def _events(
    store: EventStore, log_sets: list[str], start: datetime, end: datetime
) -> Iterator[list[Event]]:
    """The stored events of ``log_sets`` in the window, a day at a time in event-time order."""
    sets = [s for s in log_sets if s != str(LogSet.UNPARSED_DATA)]
    marks = ", ".join(f"{{s{i}:String}}" for i in range(len(sets)))
    sql = (
        f"SELECT * FROM {EVENTS_TABLE} WHERE log_set IN ({marks}) "  # noqa: S608 - parameters
        "AND timestamp >= {lo:DateTime64(3, 'UTC')} AND timestamp < {hi:DateTime64(3, 'UTC')} "
        "ORDER BY timestamp, log_name, source_topic, source_partition, source_offset, record_index"
    )
    lo = start
    while lo < end and sets:
        hi = min(lo + _DAY, end)
        params = {f"s{i}": name for i, name in enumerate(sets)}
        params["lo"] = lo.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        params["hi"] = hi.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        rows = store.select(sql, params)
        if rows:
            yield [event_of_row(row) for row in rows]
        lo = hi
