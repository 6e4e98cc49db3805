"""Rules closing on the same events share one window of them (``RuleContext.shared_window``).

Brute force and MFA fatigue followed by a success both keep a user's successful sign-ins: kept
once, each rule still gives, in any arrival order and over a restart, the alerts it gives alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hubsight.detect.alerts import Alert
from hubsight.detect.base import Rule
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_volume import BruteForceSuccess, MfaFatigueSuccess
from hubsight.detect.rules.signals import SUCCESS, USER_SUCCESSES, entry_of, signin
from hubsight.detect.ruleset import build_rule
from hubsight.detect.settings import RuleExceptions
from hubsight.parsing.event import Event

from tests.detect.test_order_sequence import _view

FAILED = "FAILED_BAD_PASSWORD"
DENIED = "FAILED_MFA"
USERS = ("adele.vance@contoso.com", "lee.gu@contoso.com")
IPS = ("203.0.113.10", "198.51.100.20")
SHARED = f"~{USER_SUCCESSES}"
# Small counts, so that random cases cite successes often.
BRUTE = {"count": 3, "window_minutes": 10, "dedup_minutes": 15}
FATIGUE = {"count": 2, "window_minutes": 8, "dedup_minutes": 15}


def _rules() -> list[Rule[Any]]:
    return [build_rule(BruteForceSuccess, BRUTE), build_rule(MfaFatigueSuccess, FATIGUE)]


def _events(spec: Sequence[tuple[float, str, str, str]]) -> list[Event]:
    events = []
    for offset, (minute, result, user, ip) in enumerate(spec):
        code = 500121 if result == DENIED else None
        events.append(signin(minute, user, result=result, ip=ip, error_code=code, offset=offset))
    return events


def _random_case(rng: random.Random) -> list[Event]:
    spec: list[tuple[float, str, str, str]] = []
    clock = 0.0
    for _ in range(rng.randint(2, 6)):
        clock += rng.uniform(1, 20)
        user = rng.choice(USERS)
        for _ in range(rng.randint(0, 5)):
            result = rng.choice((FAILED, DENIED))
            spec.append((round(clock + rng.uniform(0, 6), 3), result, user, rng.choice(IPS)))
        for _ in range(rng.randint(1, 3)):
            spec.append((round(clock + rng.uniform(0, 9), 3), SUCCESS, user, rng.choice(IPS)))
    return _events(spec)


def _engine(
    rules: Sequence[Rule[Any]],
    path: Path | None = None,
    exceptions: dict[str, RuleExceptions] | None = None,
) -> DetectionEngine:
    db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
    options = EngineOptions(learning=timedelta(0), persist=path is not None)
    return DetectionEngine(db, rules, options=options, exceptions=exceptions)


def _deliver(
    rules_of: Any,
    batches: Sequence[Sequence[Event]],
    path: Path | None = None,
    exceptions: dict[str, RuleExceptions] | None = None,
) -> dict[str, Alert]:
    """The alerts left after delivering ``batches``; restarted halfway when ``path``."""
    engine = _engine(rules_of(), path, exceptions)
    final: dict[str, Alert] = {}
    for number, batch in enumerate(batches):
        if path is not None and number == len(batches) // 2:
            engine.close()
            engine = _engine(rules_of(), path, exceptions)
        final.update((a.dedup_key, a) for a in engine.process(batch))
        final = {k: a for k, a in final.items() if a.id not in engine.withdrawn}
    engine.close()
    return final


def _alone(events: Sequence[Event], exceptions: dict[str, RuleExceptions] | None = None) -> Any:
    """Each rule alone, in order: what sharing must not change."""
    in_order = [[e] for e in sorted(events, key=lambda e: e.timestamp)]
    brute = _deliver(lambda: [build_rule(BruteForceSuccess, BRUTE)], in_order, None, exceptions)
    fatigue = _deliver(lambda: [build_rule(MfaFatigueSuccess, FATIGUE)], in_order, None, exceptions)
    return _view({**brute, **fatigue})


def _shuffled(rng: random.Random, events: Sequence[Event]) -> list[list[Event]]:
    shuffled = list(events)
    rng.shuffle(shuffled)
    batches, start = [], 0
    while start < len(shuffled):
        size = rng.randint(1, 3)
        batches.append(shuffled[start : start + size])
        start += size
    return batches


@pytest.mark.parametrize("seed", range(40))
def test_two_rules_sharing_successes_alert_as_each_alone_in_any_order(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    events = _random_case(rng)
    alone = _alone(events)
    assert _view(_deliver(_rules, _shuffled(rng, events), tmp_path)) == alone
    # One exception of one rule: that rule keeps its successes apart, without the excepted.
    exceptions = {BruteForceSuccess.meta.id: RuleExceptions(ips=(IPS[1],))}
    alone = _alone(events, exceptions)
    assert _view(_deliver(_rules, _shuffled(rng, events), None, exceptions)) == alone


def test_both_rules_cite_alerts_in_the_random_cases() -> None:
    # The cases above compare something: both rules alert in them, from shared successes.
    cited: set[str] = set()
    for seed in range(40):
        events = _random_case(random.Random(seed))
        cited |= {a.rule_id for a in _deliver(_rules, [events]).values()}
    assert cited == {BruteForceSuccess.meta.id, MfaFatigueSuccess.meta.id}


def _entries(engine: DetectionEngine, wid: str) -> list[float]:
    return sorted(e.ts for (rule, _), w in engine._state.windows.items() if rule == wid for e in w)


def _rows(engine: DetectionEngine, wid: str) -> int:
    rows = engine.db.rows("SELECT body FROM window_batches WHERE rule_id = ?", (wid,))
    return sum(len(v) for row in rows for v in msgspec.msgpack.decode(row["body"]).values())


def test_each_success_is_kept_once_and_saved_once(tmp_path: Path) -> None:
    events = _events(
        [
            (0, FAILED, USERS[0], IPS[0]),
            (1, DENIED, USERS[0], IPS[0]),
            (2, SUCCESS, USERS[0], IPS[0]),
            (3, SUCCESS, USERS[1], IPS[1]),
        ]
    )
    engine = _engine(_rules(), tmp_path)
    engine.process(events)
    assert len(_entries(engine, SHARED)) == 2
    assert _rows(engine, SHARED) == 2
    # Only the lead-ups are the rules' own.
    assert len(_entries(engine, BruteForceSuccess.meta.id)) == 1
    assert len(_entries(engine, MfaFatigueSuccess.meta.id)) == 1
    assert engine.state_size().entries == 4
    engine.close()


def _third_failure_late() -> list[Event]:
    """Two failures, a success, then the third failure that gets it cited, arriving last."""
    return _events(
        [
            (1, FAILED, USERS[0], IPS[0]),
            (2, FAILED, USERS[0], IPS[0]),
            (5, SUCCESS, USERS[0], IPS[0]),
            (3, FAILED, USERS[0], IPS[0]),
        ]
    )


def test_a_rule_given_exceptions_keeps_a_copy_and_a_late_failure_still_cites(
    tmp_path: Path,
) -> None:
    # Two failures and a success arrive; the rule gets an exception (its successes now kept
    # apart); the third failure arrives late and completes the success seen before the change.
    events = _third_failure_late()
    engine = _engine(_rules(), tmp_path)
    assert engine.process(events[:3]) == []
    own = f"{SHARED}|{BruteForceSuccess.meta.id}"
    exceptions = {BruteForceSuccess.meta.id: RuleExceptions(ips=(IPS[1],))}
    engine.reconfigure(_rules(), exceptions)
    assert _entries(engine, own) == _entries(engine, SHARED) == [events[2].timestamp.timestamp()]
    (alert,) = engine.process(events[3:])
    assert alert.evidence[-1].source_offset == events[2].source_offset
    # The copy is saved: a restart finds it.
    engine.close()
    again = _engine(_rules(), tmp_path, exceptions)
    assert _rows(again, own) == 1
    # Without exceptions again, the rule goes back to the shared window and its copy goes.
    again.reconfigure(_rules(), {})
    assert _entries(again, own) == []
    assert _rows(again, own) == 0
    assert _entries(again, SHARED) == [events[2].timestamp.timestamp()]
    again.close()


def test_the_shared_window_goes_with_the_last_rule_sharing_it(tmp_path: Path) -> None:
    events = _events([(0, SUCCESS, USERS[0], IPS[0])])
    engine = _engine(_rules(), tmp_path)
    engine.process(events)
    engine.reconfigure([build_rule(MfaFatigueSuccess, FATIGUE)], {})
    assert len(_entries(engine, SHARED)) == 1
    engine.reconfigure([], {})
    assert _entries(engine, SHARED) == []
    assert _rows(engine, SHARED) == 0
    engine.close()


# Either rule may be the one retaining longest.
@pytest.mark.parametrize(
    ("brute_minutes", "fatigue_minutes", "kept"),
    [(10, 60, [300, 300 + 1 / 60]), (60, 10, [300, 300 + 1 / 60]), (10, 10, [])],
)
def test_the_shared_window_keeps_what_the_longest_retaining_rule_needs(
    brute_minutes: int, fatigue_minutes: int, kept: list[float]
) -> None:
    def rules() -> list[Rule[Any]]:
        return [
            build_rule(BruteForceSuccess, {**BRUTE, "window_minutes": brute_minutes}),
            build_rule(MfaFatigueSuccess, {**FATIGUE, "window_minutes": fatigue_minutes}),
        ]

    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        rules(),
        options=EngineOptions(learning=timedelta(0), persist=False, lateness=timedelta(hours=1)),
    )
    # Pruned at the first batch, then six hours of event time later, at minute 420: an hour
    # of lateness and the rule's retention back, minute 300 with an hour, 350 with ten minutes.
    engine.process(_events([(0, SUCCESS, USERS[0], IPS[0])]))
    minutes = [300 - 1 / 60, 300, 300 + 1 / 60]
    engine.process(_events([(m, SUCCESS, USERS[0], IPS[0]) for m in minutes]))
    engine.process(_events([(420, SUCCESS, USERS[1], IPS[0])]))
    start = signin(0).timestamp.timestamp()
    assert [(ts - start) / 60 for ts in _entries(engine, SHARED)] == pytest.approx([*kept, 420])


def test_successes_kept_before_sharing_move_to_the_shared_window_on_start(tmp_path: Path) -> None:
    # As an earlier version saved them: each rule's successes in an "S" window of its own.
    events = _third_failure_late()
    engine = _engine(_rules(), tmp_path)
    engine.process(events[:2])
    success = entry_of(events[2], "S")
    for rule in engine.rules:
        engine._contexts[rule.meta.id].window(f"S\t{USERS[0]}").add(success)
    engine.process([])
    engine.close()
    # Two starts: moved once, and the rows left until pruned move again to no effect.
    for _ in range(2):
        engine = _engine(_rules(), tmp_path)
        assert _entries(engine, SHARED) == [success.ts]
        assert [k for k in engine._state.windows if k[1].startswith("S\t")] == []
        engine.process([])
        assert engine.state_size().entries == 3
        engine.close()
    engine = _engine(_rules(), tmp_path)
    # The late third failure cites the success saved before the upgrade.
    (alert,) = engine.process(events[3:])
    assert alert.rule_id == BruteForceSuccess.meta.id
    assert alert.evidence[-1] == success.ref
    engine.close()
