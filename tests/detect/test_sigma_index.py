"""The index of single-event Sigma rules: what each rule requires; it never drops a match."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubsight.detect.base import example_event
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.sigma import SigmaDetection, load_sigma_rules
from hubsight.detect.sigma.condition import Condition, Opaque, Predicate
from hubsight.detect.sigma.index import (
    MIN_INDEXED,
    Indexed,
    Requirement,
    SigmaIndex,
    split_indexed,
)
from hubsight.detect.sigma.record import AzureRecord
from hubsight.parsing.event import Event, LogSet

from tests.detect.context import NoContext

AZURE = Path(__file__).parents[1] / "data" / "azure"
OUR_RULES = Path(__file__).parent / "sigma_rules" / "shapes"
OWN = Path(__file__).parent / "sigma_rules" / "own"
SIGN_IN = "SignInLogs/success-mfa-push.json"
AUDIT = "AuditLogs/global-admin-role-granted.json"

CODE = ("properties.status.errorCode", "resultType")


def _write(folder: Path, name: str, detection: dict[str, Any], service: str) -> None:
    doc = {
        "title": name,
        "id": None,
        "logsource": {"product": "azure", "service": service},
        "detection": detection,
    }
    del doc["id"]
    (folder / f"{name}.yml").write_text(yaml.safe_dump(doc), "utf-8")


# Rules of every shape the index must reason about, by name: (detection, service).
SHAPES: dict[str, tuple[dict[str, Any], str]] = {
    "one_literal": ({"selection": {"AppId": "app-1"}, "condition": "selection"}, "signinlogs"),
    "or_of_two": (
        {"selection": {"AppId": ["app-1", "App-2"]}, "condition": "selection"},
        "signinlogs",
    ),
    "and_of_two": (
        {"selection": {"AppId": "app-1", "ResultType": 50053}, "condition": "selection"},
        "signinlogs",
    ),
    "and_not": (
        {
            "selection": {"RiskState": "atRisk"},
            "filter": {"AppId": "app-1"},
            "condition": "selection and not filter",
        },
        "signinlogs",
    ),
    "only_not": ({"filter": {"AppId": "app-1"}, "condition": "not filter"}, "signinlogs"),
    "one_of": (
        {
            "selection_app": {"AppId": "app-2", "ResultType": 0},
            "selection_risk": {"RiskState": "atRisk"},
            "condition": "1 of selection_*",
        },
        "signinlogs",
    ),
    "one_of_with_contains": (
        {
            "selection_app": {"AppId": "app-2"},
            "selection_agent": {"UserAgent|contains": "python"},
            "condition": "1 of selection_*",
        },
        "signinlogs",
    ),
    "contains": (
        {"selection": {"UserAgent|contains": "Edg/"}, "condition": "selection"},
        "signinlogs",
    ),
    "keyword": ({"keywords": ["mobile app notification"], "condition": "keywords"}, "signinlogs"),
    "boolean": (
        {"selection": {"DeviceDetail.isCompliant": False}, "condition": "selection"},
        "signinlogs",
    ),
    "cased": (
        {"selection": {"AppDisplayName|cased": "Office 365"}, "condition": "selection"},
        "signinlogs",
    ),
    "two_conditions": (
        {
            "a": {"AppId": "app-1"},
            "b": {"ResultType": "50126"},
            "condition": ["a", "b"],
        },
        "signinlogs",
    ),
    "audit_activity": (
        {
            "selection": {
                "ActivityDisplayName": ["Add member to role", "Add owner to application"]
            },
            "condition": "selection",
        },
        "auditlogs",
    ),
}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SigmaDetection]:
    folder = tmp_path_factory.mktemp("shapes")
    for name, (detection, service) in SHAPES.items():
        _write(folder, name, detection, service)
    loads = load_sigma_rules(folder)
    assert all(load.rule is not None for load in loads), [load.reason for load in loads]
    return {load.path.stem: load.rule for load in loads if isinstance(load.rule, SigmaDetection)}


def _clauses(*clauses: set[tuple[str, Any]]) -> set[frozenset[tuple[str, Any]]]:
    return {frozenset(clause) for clause in clauses}


APP_1 = ("properties.appId", "app-1")
RISK = ("properties.riskState", "atrisk")

EXPECTED: dict[str, set[frozenset[tuple[str, Any]]]] = {
    "one_literal": _clauses({APP_1}),
    # Values are compared in lower case, as the predicates compare them.
    "or_of_two": _clauses({APP_1, ("properties.appId", "app-2")}),
    # Every part of an AND is a clause; a number is looked for as a number at both its paths.
    "and_of_two": _clauses({APP_1}, {(path, 50053.0) for path in CODE}),
    # What a NOT excludes is never required.
    "and_not": _clauses({RISK}),
    "only_not": set(),
    # One of the selections: either's literal, for each combination of their clauses.
    "one_of": _clauses(
        {("properties.appId", "app-2"), RISK}, {*((path, 0.0) for path in CODE), RISK}
    ),
    # A selection holding without any literal makes the rule hold without one.
    "one_of_with_contains": set(),
    "contains": set(),
    "keyword": set(),
    "boolean": _clauses({("properties.deviceDetail.isCompliant", "false")}),
    # A cased match is also a match of the lower-case texts.
    "cased": _clauses({("properties.appDisplayName", "office 365")}),
    # Several conditions: the rule holds when any does.
    "two_conditions": _clauses(
        {APP_1, ("properties.status.errorCode", "50126"), ("resultType", "50126")}
    ),
    "audit_activity": _clauses(
        {
            ("properties.activityDisplayName", "add member to role"),
            ("properties.activityDisplayName", "add owner to application"),
        }
    ),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_requirement_of_each_shape(shapes: dict[str, SigmaDetection], name: str) -> None:
    assert set(shapes[name].requirement) == EXPECTED[name]


def _record(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((AZURE / path).read_text("utf-8"))
    return data


def _event(
    record: dict[str, Any],
    *,
    audit: bool = False,
    result: str = "SUCCESS",
    raw: bytes | None = None,
) -> Event:
    log_set = LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY if audit else LogSet.INGRESS_AUTHENTICATION
    category = "AuditLogs" if audit else "SignInLogs"
    return example_event(
        log_set,
        raw=msgspec.json.encode(record) if raw is None else raw,
        category=category,
        user="alice.martin@contoso.com",
        result=result,
    )


def _index(rules: list[SigmaDetection], least: int = 1) -> SigmaIndex[SigmaDetection]:
    return SigmaIndex([(rule, rule.requirement, rule.condition) for rule in rules], least=least)


def _counting(requirements: list[Requirement], least: int) -> tuple[SigmaIndex[int], list[int]]:
    # Rules that always hold, numbered, whose predicates note that they ran.
    ran: list[int] = []

    def predicate(number: int) -> Predicate:
        def holds(record: AzureRecord) -> bool:
            ran.append(number)
            return True

        return holds

    targets = [(n, clauses, Opaque(predicate(n))) for n, clauses in enumerate(requirements)]
    return SigmaIndex(targets, least=least), ran


def _app(value: str) -> Requirement:
    return (frozenset({("properties.appId", value)}),)


def test_the_index_runs_only_the_rules_whose_clause_the_record_satisfies() -> None:
    wide: Requirement = (frozenset({("properties.appId", "app-1"), ("resultType", 0.0)}),)
    narrow_first = (*_app("app-2"), frozenset({("properties.riskState", "atrisk")}))
    index, ran = _counting([_app("app-1"), wide, narrow_first, (), _app("app-9")], least=4)
    assert index.indexed
    record = _record(SIGN_IN)
    record["resultType"] = "50126"
    record["properties"]["status"]["errorCode"] = 50126
    # No clause holds: only the rule without one runs.
    assert index.select(_event(record)) == [3]
    assert ran == [3]
    record["properties"]["appId"] = "APP-1"
    record["resultType"] = 0
    ran.clear()
    assert index.select(_event(record)) == [0, 1, 3]
    # A rule is screened on its first (narrowest) clause only: its condition decides the rest.
    record["properties"]["appId"] = "app-2"
    ran.clear()
    assert index.select(_event(record)) == [1, 2, 3]
    assert ran == [1, 2, 3]


def test_kinds_reaching_few_rules_with_clauses_run_every_predicate() -> None:
    requirements = [_app("app-1"), _app("app-2"), ()]
    index, ran = _counting(requirements, least=3)
    assert not index.indexed
    assert index.select(_event(_record(SIGN_IN))) == [0, 1, 2]
    assert ran == [0, 1, 2]
    assert _counting(requirements, least=2)[0].indexed
    assert MIN_INDEXED == 24


def test_the_matcher_returns_exactly_the_rules_that_match(
    shapes: dict[str, SigmaDetection],
) -> None:
    rules = [shapes[name] for name in ("one_literal", "and_of_two", "one_of", "contains")]
    record = _record(SIGN_IN)
    record["properties"]["appId"] = "app-1"
    # and_of_two is a candidate (its narrowest clause holds) but wants the code 50053 too;
    # the sample's browser is Edge.
    for least in (1, MIN_INDEXED):
        selected = _index(rules, least).select(_event(record))
        assert selected == [shapes["one_literal"], shapes["contains"]]
    assert _index(rules).select(_event(record, raw=b"[1, 2]")) == []


def _same(target: Any, rule: Indexed) -> Any:
    return target


def test_correlations_and_other_rules_are_run_one_by_one(
    shapes: dict[str, SigmaDetection], every_rule: list[SigmaDetection]
) -> None:
    correlation = next(
        load.rule
        for load in load_sigma_rules(OWN)
        if load.rule is not None and not isinstance(load.rule, SigmaDetection)
    )
    detections = [shapes["contains"], shapes["one_literal"]]
    plain, index = split_indexed([correlation, *detections], lambda rule: rule, _same)
    assert plain == [correlation]
    assert index is not None
    assert len(index) == 2
    assert split_indexed([correlation], lambda rule: rule, _same) == ([correlation], None)


@pytest.fixture(scope="module")
def every_rule(shapes: dict[str, SigmaDetection]) -> list[SigmaDetection]:
    ours = [load.rule for load in load_sigma_rules(OUR_RULES)]
    return [*shapes.values(), *(r for r in ours if isinstance(r, SigmaDetection))]


def _literals(rules: list[SigmaDetection]) -> list[tuple[str, Any]]:
    # The values the rules look for, at record paths a generated record can hold.
    found = {
        literal
        for rule in rules
        for clause in rule.requirement
        for literal in clause
        if not literal[0].startswith("hubsight:")
    }
    return sorted(found, key=repr)


def _put(record: dict[str, Any], path: str, value: Any) -> None:
    node = record
    *parents, last = path.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[last] = value


def _spelled(value: Any, how: int) -> Any:
    # A value as a record may hold it: the rule's text in another case, a number as text.
    if isinstance(value, float):
        return [int(value), str(int(value)), value][how % 3]
    if value in ("true", "false") and how % 2:
        return value == "true"
    return [value, value.upper(), value.title()][how % 3]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_matcher_never_drops_a_match_nor_adds_one(
    every_rule: list[SigmaDetection], data: st.DataObject
) -> None:
    literals = _literals(every_rule)
    audit = data.draw(st.booleans())
    record = _record(AUDIT if audit else SIGN_IN)
    for path, value in data.draw(st.lists(st.sampled_from(literals), max_size=6)):
        _put(record, path, _spelled(value, data.draw(st.integers(0, 5))))
    event = _event(record, audit=audit, result=data.draw(st.sampled_from(["SUCCESS", "FAILURE"])))
    # As the engine does, the matcher holds the rules of the event's category.
    rules = [rule for rule in every_rule if (event.category or "").lower() in rule.categories]
    matching = [rule for rule in rules if rule.match(event) is not None]
    for least in (1, len(rules) + 1):
        assert _index(rules, least).select(event) == matching


def _fired(rules: list[SigmaDetection], events: list[Event]) -> set[str]:
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        rules,
        options=EngineOptions(persist=False, lateness=timedelta(minutes=5)),
    )
    alerts = engine.process(events)
    engine.db.close()
    return {alert.rule_id for alert in alerts}


def test_rules_without_a_literal_still_run_on_every_event_of_their_kind(
    shapes: dict[str, SigmaDetection],
) -> None:
    rules = [shapes[name] for name in ("contains", "keyword", "only_not", "one_literal")]
    ids = {name: shapes[name].meta.id for name in ("contains", "keyword", "only_not")}
    # The sample sign-in: Edge, a push notification, another app: every literal-free rule fires.
    assert _fired(rules, [_event(_record(SIGN_IN))]) == set(ids.values())


def test_the_engine_hands_indexed_rules_their_events_late_or_not(
    shapes: dict[str, SigmaDetection],
) -> None:
    rule = shapes["and_of_two"]
    record = _record(SIGN_IN)
    record["properties"]["appId"] = "app-1"
    record["properties"]["status"]["errorCode"] = 50053
    now = _event(record)
    hours_later = example_event(
        LogSet.INGRESS_AUTHENTICATION, minute=600, raw=b"{}", category="SignInLogs"
    )
    # An event beyond the lateness still reaches single-event rules.
    assert _fired([rule], [hours_later, now]) == {rule.meta.id}
    del record["properties"]["appId"]
    assert _fired([rule], [_event(record)]) == set()


def test_a_predicate_that_fails_leaves_its_rule_to_the_engine_which_records_the_error() -> None:
    def broken(record: Any) -> bool:
        raise ValueError("broken predicate")

    index = SigmaIndex(
        [("broken", (), Opaque(broken)), ("never", (), Opaque(lambda record: False))]
    )
    # The engine then evaluates the rule, whose own failure it counts against the rule.
    assert index.select(_event(_record(SIGN_IN))) == ["broken"]


def test_a_failing_predicate_gives_the_fallback_and_a_holding_one_the_target() -> None:
    def broken(record: Any) -> bool:
        raise ValueError("broken predicate")

    targets = [
        ("holds", (), Opaque(lambda record: True)),
        ("broken", _app("app-1"), Opaque(broken)),
        ("never", (), Opaque(lambda record: False)),
    ]
    record = _record(SIGN_IN)
    record["properties"]["appId"] = "app-1"
    # Unindexed (one compiled function) and indexed (a predicate per candidate) alike.
    for least in (1, 4):
        index = SigmaIndex(
            targets, fallbacks=["evaluate 0", "evaluate 1", "evaluate 2"], least=least
        )
        assert index.indexed is (least == 1)
        assert index.select(_event(record)) == ["holds", "evaluate 1"]
    with pytest.raises(ValueError, match="one fallback per target"):
        SigmaIndex(targets, fallbacks=["evaluate 0"])


class _Rule(Indexed):
    def __init__(self, condition: Condition | None) -> None:
        self._condition = condition

    @property
    def condition(self) -> Condition | None:
        return self._condition


def test_the_index_selects_the_found_target_of_a_rule_and_its_own_on_failure() -> None:
    def broken(record: Any) -> bool:
        raise ValueError("broken predicate")

    holds, fails, never = (_Rule(Opaque(p)) for p in (lambda r: True, broken, lambda r: False))
    plain = _Rule(None)
    targets: list[tuple[str, Indexed]] = [("h", holds), ("f", fails), ("p", plain), ("n", never)]
    rest, index = split_indexed(
        targets, lambda target: target[1], lambda target, rule: (target[0] + " found", rule)
    )
    assert rest == [("p", plain)]
    assert index is not None
    assert index.select(_event(_record(SIGN_IN))) == [("h found", holds), ("f", fails)]


def test_the_engine_takes_the_index_at_its_word_and_does_not_match_again(
    shapes: dict[str, SigmaDetection], monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = shapes["one_literal"]
    record = _record(SIGN_IN)
    record["properties"]["appId"] = "app-1"
    tested: list[Event] = []
    # The rule's own test, as its evaluation runs it: the index found the match already.
    monkeypatch.setattr(rule, "match", lambda event: tested.append(event))
    assert _fired([rule], [_event(record)]) == {rule.meta.id}
    assert tested == []


def test_an_event_without_a_category_makes_no_finding_as_its_evaluation_makes_none(
    shapes: dict[str, SigmaDetection],
) -> None:
    rule = shapes["one_literal"]
    record = _record(SIGN_IN)
    record["properties"]["appId"] = "app-1"
    event = _event(record)
    event.category = None
    # Its kind (no category) reaches the rule, and the record holds the rule's value.
    assert _index([rule]).select(event) == [rule]
    assert list(rule.evaluate(event, NoContext())) == []
    assert _fired([rule], [event]) == set()
    event.category = "SignInLogs"
    assert _fired([rule], [event]) == {rule.meta.id}
