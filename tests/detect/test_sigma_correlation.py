"""Sigma correlation rules: loading (per document), and alerts against their definition.

The oracle is the Sigma specification's definition, per group (here: per user): a window of
``timespan`` ending at one of the group's matched events holds when it has at least ``count``
events (``event_count``), distinct values (``value_count``), an event of every base rule
(``temporal``) or of the base rules in order, each strictly later (``temporal_ordered``). An
alert holds every event of the windows that held within an hour (the dedup window) of each
other, keyed by the hour its first event falls in.
Random arrival orders and batchings, with a restart half-way, must give the alerts of in-order
delivery.
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
from hubsight.detect.base import EventRef, example_event
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.sigma import LOADED, SigmaCorrelation, SigmaLoad, load_sigma_rules
from hubsight.parsing.event import Event, LogSet

FAILED, SUCCESS = "50126", "0"
USERS = ("adele.vance@contoso.com", "Megan.Bowen@contoso.com")
IPS = ("203.0.113.10", "198.51.100.7", "192.0.2.44")

BASES = """
title: Failed sign-in
name: failed_signin
id: 6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f
logsource: {product: azure, service: signinlogs}
detection:
  selection: {ResultType: 50126}
  condition: selection
---
title: Successful sign-in
name: successful_signin
logsource: {product: azure, service: signinlogs}
detection:
  selection: {ResultType: 0}
  condition: selection
"""


def _correlation(body: str, *, title: str = "Correlated") -> str:
    return f"""---
title: {title}
id: 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d
level: high
tags: [attack.t1110]
correlation:
{body}
"""


RULES: dict[str, str] = {
    "event_count": """  type: event_count
  rules: [failed_signin]
  group-by: [UserPrincipalName]
  timespan: 10m
  condition: {gte: 3}""",
    "value_count": """  type: value_count
  rules: [failed_signin]
  group-by: [UserPrincipalName]
  timespan: 10m
  condition: {gte: 2, field: IPAddress}""",
    "temporal": """  type: temporal
  rules: [failed_signin, successful_signin]
  group-by: [UserPrincipalName]
  timespan: 10m""",
    "temporal_ordered": """  type: temporal_ordered
  rules: [failed_signin, successful_signin]
  group-by: [UserPrincipalName]
  timespan: 10m""",
}


def _load(tmp_path: Path, text: str, name: str = "rules.yml") -> list[SigmaLoad]:
    folder = tmp_path / "sigma"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, "utf-8")
    return load_sigma_rules(folder)


def _correlation_rule(tmp_path: Path, kind: str) -> SigmaCorrelation:
    loads = _load(tmp_path, BASES + _correlation(RULES[kind]))
    rule = loads[-1].rule
    assert isinstance(rule, SigmaCorrelation), loads[-1].reason
    return rule


def _signin(minute: float, user: str, result: str, ip: str | None, offset: int) -> Event:
    properties = (
        {"userPrincipalName": user} if ip is None else {"userPrincipalName": user, "ipAddress": ip}
    )
    record = {"category": "SignInLogs", "resultType": result, "properties": properties}
    return example_event(
        LogSet.INGRESS_AUTHENTICATION,
        minute,
        offset=offset,
        category="SignInLogs",
        user=user.lower(),
        source_ip=ip,
        result="SUCCESS" if result == SUCCESS else "FAILED_BAD_PASSWORD",
        raw=msgspec.json.encode(record),
    )


# Loading.


def test_a_file_with_base_rules_and_a_correlation_reports_every_document(tmp_path: Path) -> None:
    loads = _load(tmp_path, BASES + _correlation(RULES["temporal"]))
    assert [(load.document, load.rule_id) for load in loads] == [
        (1, "sigma.6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"),
        (2, "sigma.successful_signin"),
        (3, "sigma.1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
    ]
    silent = (
        "loaded as a base rule of sigma.1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d only "
        "(generate: false): no alerts of its own"
    )
    assert [load.reason for load in loads] == [silent, silent, LOADED]
    assert [load.loaded for load in loads] == [True, True, True]
    assert [load.rule is None for load in loads] == [True, True, False]
    rule = loads[2].rule
    assert isinstance(rule, SigmaCorrelation)
    assert rule.meta.windowed
    assert rule.meta.severity == "High"
    assert rule.meta.technique == "T1110"
    assert rule.base_rules == [
        "sigma.6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        "sigma.successful_signin",
    ]


def test_generate_true_keeps_the_base_rules_alerts(tmp_path: Path) -> None:
    loads = _load(tmp_path, BASES + _correlation(RULES["temporal"] + "\n  generate: true"))
    assert [load.reason for load in loads] == [LOADED, LOADED, LOADED]


def test_a_correlation_finds_its_base_rules_in_other_files(tmp_path: Path) -> None:
    _load(tmp_path, BASES, "bases.yml")
    loads = _load(tmp_path, _correlation(RULES["event_count"]), "count.yml")
    assert [(load.path.name, load.reason) for load in loads][-1] == ("count.yml", LOADED)
    # The successful sign-in rule feeds no correlation: it keeps its alerts.
    assert [load.reason for load in loads][1] == LOADED


REFUSED = {
    "lt": (
        RULES["event_count"].replace("gte: 3", "lt: 3"),
        "the condition lt is not supported: a streaming engine can only decide 'at least' "
        "(gte, gt) before the window closes",
    ),
    "value_sum": (
        RULES["value_count"].replace("value_count", "value_sum"),
        "value_sum correlations are not supported (supported: event_count, value_count, "
        "temporal, temporal_ordered)",
    ),
    "missing": (
        RULES["event_count"].replace("[failed_signin]", "[nowhere]"),
        "Rule 'nowhere' not found in rule collection",
    ),
    "field": (
        RULES["event_count"].replace("UserPrincipalName]", "CommandLine]"),
        "field CommandLine is not in Entra ID sign-in records (azure/signinlogs), the records "
        "of its rule sigma.6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f; use a SigninLogs column such "
        "as ResultType or a path such as properties.deviceDetail",
    ),
    "not": (
        RULES["temporal"].replace(
            "  rules: [failed_signin, successful_signin]\n",
            "  condition: failed_signin and not successful_signin\n",
        ),
        "'not' in a temporal condition is not supported: an absence can only be decided once "
        "the window has closed",
    ),
    "alias": (
        RULES["temporal"].replace("[UserPrincipalName]", "[account]")
        + "\n  aliases:\n    account: {failed_signin: UserPrincipalName}",
        "alias account names no field of its rule sigma.successful_signin",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_correlation_that_cannot_run_says_why(tmp_path: Path, case: str) -> None:
    body, reason = REFUSED[case]
    loads = _load(tmp_path, BASES + _correlation(body))
    assert loads[-1].rule is None
    assert loads[-1].reason == reason
    assert not loads[-1].loaded


def test_a_correlation_of_a_base_rule_that_does_not_load_names_it(tmp_path: Path) -> None:
    bad = BASES.replace("{ResultType: 0}", "{CommandLine: whoami}")
    loads = _load(tmp_path, bad + _correlation(RULES["temporal"]))
    assert loads[-1].reason.startswith(
        "its base rule sigma.successful_signin does not load: field CommandLine is not in"
    )


def test_a_correlation_of_a_correlation_is_refused(tmp_path: Path) -> None:
    chained = _correlation(RULES["event_count"]) + _correlation(
        RULES["event_count"].replace("[failed_signin]", "[1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d]"),
        title="Chained",
    ).replace(
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d\nlevel", "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e\nlevel"
    )
    loads = _load(tmp_path, BASES + chained)
    assert loads[-1].reason == (
        "its rule sigma.1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d is a correlation: chains are not "
        "supported"
    )


# Alerts against the definition.


def _deliver(
    rule: SigmaCorrelation, batches: Sequence[Sequence[Event]], path: Path | None = None
) -> dict[str, Alert]:
    db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
    options = EngineOptions(learning=timedelta(0), persist=path is not None)
    engine = DetectionEngine(db, [rule], options=options)
    final: dict[str, Alert] = {}
    for number, batch in enumerate(batches):
        if path is not None and number == len(batches) // 2:
            engine.close()
            engine = DetectionEngine(DetectDB(path / "detect.sqlite3"), [rule], options=options)
        final.update((a.dedup_key, a) for a in engine.process(batch))
        final = {k: a for k, a in final.items() if a.id not in engine.withdrawn}
    engine.close()
    return final


def _holds(kind: str, span: Sequence[Event]) -> bool:
    failed = [e for e in span if e.result != "SUCCESS"]
    if kind == "event_count":
        return len(failed) >= 3
    if kind == "value_count":
        return len({e.source_ip for e in failed}) >= 2
    succeeded = [e for e in span if e.result == "SUCCESS"]
    if kind == "temporal":
        return bool(failed) and bool(succeeded)
    return any(f.timestamp < s.timestamp for f in failed for s in succeeded)


def _definition(kind: str, events: Sequence[Event]) -> dict[tuple[str, int], set[EventRef]]:
    """Evidence per (user, dedup bucket), straight from the definition."""
    counted = [
        e for e in events if kind in ("temporal", "temporal_ordered") or e.result != "SUCCESS"
    ]
    held: dict[str, list[set[EventRef]]] = {}
    for end in counted:
        span = [
            e
            for e in counted
            if e.user == end.user
            and timedelta(0) <= end.timestamp - e.timestamp <= timedelta(minutes=10)
        ]
        if _holds(kind, span):
            held.setdefault(end.user or "", []).append({EventRef.of(e) for e in span})
    # Windows of one group within the dedup window (an hour) of each other are one alert,
    # keyed by the hour its first event falls in.
    out: dict[tuple[str, int], set[EventRef]] = {}
    for user, spans in held.items():
        alerts: list[set[EventRef]] = []
        for refs in sorted(spans, key=min):
            if alerts and min(refs).timestamp - max(alerts[-1]).timestamp <= timedelta(hours=1):
                alerts[-1] |= refs
            else:
                alerts.append(set(refs))
        for refs in alerts:
            out[(user, int(min(refs).timestamp.timestamp() // 3600))] = refs
    return out


def _random_case(rng: random.Random) -> list[Event]:
    events: list[Event] = []
    clock = 0.0
    for _ in range(rng.randint(2, 5)):
        clock += rng.uniform(2, 30)
        for _ in range(rng.randint(1, 5)):
            minute = round(clock + rng.uniform(0, 8), 1)
            result = rng.choice((FAILED, FAILED, SUCCESS))
            events.append(_signin(minute, rng.choice(USERS), result, rng.choice(IPS), len(events)))
    return events


def _view(alerts: dict[str, Alert]) -> dict[str, Any]:
    return {
        k: (a.first_event_time, a.last_event_time, tuple(a.evidence), a.user, a.title)
        for k, a in alerts.items()
    }


@pytest.mark.parametrize("kind", sorted(RULES))
def test_any_arrival_order_gives_the_alerts_of_the_definition(tmp_path: Path, kind: str) -> None:
    rule = _correlation_rule(tmp_path, kind)
    for seed in range(25):
        rng = random.Random(seed)
        events = _random_case(rng)
        in_order = _deliver(rule, [[e] for e in sorted(events, key=lambda e: e.timestamp)])
        expected = _definition(kind, events)
        got = {
            (
                a.context["sigma_group"]["UserPrincipalName"],
                int(a.dedup_key.rsplit("|", 1)[1]),
            ): set(a.evidence)
            for a in in_order.values()
        }
        assert got == {(user.lower(), b): refs for (user, b), refs in expected.items()}, seed
        shuffled = events[:]
        rng.shuffle(shuffled)
        batches, start = [], 0
        while start < len(shuffled):
            size = rng.randint(1, 4)
            batches.append(shuffled[start : start + size])
            start += size
        restarted = tmp_path / f"{kind}-{seed}"
        restarted.mkdir()
        assert _view(_deliver(rule, batches, restarted)) == _view(in_order), seed


def test_the_alert_cites_its_events_and_names_its_base_rules(tmp_path: Path) -> None:
    rule = _correlation_rule(tmp_path, "temporal_ordered")
    user = USERS[1]
    events = [
        _signin(0, user, FAILED, IPS[0], 0),
        _signin(4, user, FAILED, IPS[1], 1),
        _signin(9, user, SUCCESS, IPS[1], 2),
        # Another user's success and an old failure stay out of the alert.
        _signin(9, USERS[0], SUCCESS, IPS[1], 3),
        _signin(-1.5, user, FAILED, IPS[0], 4),
    ]
    (alert,) = _deliver(rule, [events]).values()
    assert alert.title == f"Correlated (UserPrincipalName={user.lower()})"
    assert alert.user == user.lower()
    assert alert.severity == "High"
    assert alert.evidence == [EventRef.of(e) for e in events[:3]]
    assert alert.context == {
        "sigma_correlation": "temporal_ordered",
        "sigma_base_rules": [
            "sigma.6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
            "sigma.successful_signin",
        ],
        "sigma_group": {"UserPrincipalName": user.lower()},
    }


def test_the_window_is_timespan_long_at_the_edge(tmp_path: Path) -> None:
    rule = _correlation_rule(tmp_path, "event_count")
    user = USERS[0]
    inside = [_signin(m, user, FAILED, IPS[0], i) for i, m in enumerate((0, 5, 10))]
    outside = [_signin(m, user, FAILED, IPS[0], i) for i, m in enumerate((0, 5, 10.01))]
    assert len(_deliver(rule, [inside])) == 1
    assert _deliver(rule, [outside]) == {}


def test_the_success_must_come_strictly_after_the_failure(tmp_path: Path) -> None:
    rule = _correlation_rule(tmp_path, "temporal_ordered")
    user = USERS[0]
    same_time = [_signin(3, user, FAILED, IPS[0], 0), _signin(3, user, SUCCESS, IPS[0], 1)]
    assert _deliver(rule, [same_time]) == {}
    after = [_signin(3, user, FAILED, IPS[0], 0), _signin(3.01, user, SUCCESS, IPS[0], 1)]
    assert len(_deliver(rule, [after])) == 1
    reversed_order = [_signin(3, user, SUCCESS, IPS[0], 0), _signin(4, user, FAILED, IPS[0], 1)]
    assert _deliver(rule, [reversed_order]) == {}


def test_aliases_group_different_fields_of_each_rule(tmp_path: Path) -> None:
    body = (
        RULES["temporal"].replace("[UserPrincipalName]", "[address]")
        + "\n  aliases:\n    address: {failed_signin: IPAddress, successful_signin: IPAddress}"
    )
    loads = _load(tmp_path, BASES + _correlation(body))
    rule = loads[-1].rule
    assert isinstance(rule, SigmaCorrelation), loads[-1].reason
    # Two users from one address: grouped by the address, the correlation holds.
    events = [_signin(0, USERS[0], FAILED, IPS[2], 0), _signin(1, USERS[1], SUCCESS, IPS[2], 1)]
    (alert,) = _deliver(rule, [events]).values()
    assert alert.context["sigma_group"] == {"address": IPS[2]}
    assert alert.source_ip == IPS[2]
    assert alert.user is None
    other = [_signin(0, USERS[0], FAILED, IPS[2], 0), _signin(1, USERS[0], SUCCESS, IPS[1], 1)]
    assert _deliver(rule, [other]) == {}


def test_gt_wants_one_more_than_its_count(tmp_path: Path) -> None:
    body = RULES["event_count"].replace("gte: 3", "gt: 2")
    rule = _load(tmp_path, BASES + _correlation(body))[-1].rule
    assert isinstance(rule, SigmaCorrelation)
    user = USERS[0]
    three = [_signin(m, user, FAILED, IPS[0], i) for i, m in enumerate((0, 1, 2))]
    assert len(_deliver(rule, [three])) == 1
    assert _deliver(rule, [three[:2]]) == {}


def test_an_extended_temporal_condition_holds_as_its_expression_says(tmp_path: Path) -> None:
    body = RULES["temporal"].replace(
        "  rules: [failed_signin, successful_signin]\n",
        "  condition: failed_signin or successful_signin\n",
    )
    rule = _load(tmp_path, BASES + _correlation(body))[-1].rule
    assert isinstance(rule, SigmaCorrelation)
    assert len(_deliver(rule, [[_signin(0, USERS[0], SUCCESS, IPS[0], 0)]])) == 1
    both = body.replace(" or ", " and ")
    rule = _load(tmp_path, BASES + _correlation(both))[-1].rule
    assert isinstance(rule, SigmaCorrelation)
    assert _deliver(rule, [[_signin(0, USERS[0], SUCCESS, IPS[0], 0)]]) == {}


@pytest.mark.parametrize("rules", ["[failed_signin]", "[failed_signin, successful_signin]"])
def test_value_count_skips_matched_events_without_the_field(tmp_path: Path, rules: str) -> None:
    # One base rule takes a path of its own (no sorting out of bases): both must skip alike.
    body = RULES["value_count"].replace("[failed_signin]", rules)
    rule = _load(tmp_path, BASES + _correlation(body))[-1].rule
    assert isinstance(rule, SigmaCorrelation)
    user = USERS[0]
    # Matched events without an address count no value, even an empty one.
    one_address = [
        _signin(0, user, FAILED, IPS[0], 0),
        _signin(1, user, FAILED, None, 1),
        _signin(2, user, SUCCESS, None, 2),
    ]
    assert _deliver(rule, [one_address]) == {}
    two = [*one_address, _signin(3, user, FAILED, IPS[1], 3)]
    (alert,) = _deliver(rule, [two]).values()
    assert alert.evidence == [EventRef.of(two[0]), EventRef.of(two[3])]
