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
from hubsight.detect.sigma import index as sigma_index
from hubsight.detect.sigma.index import MIN_INDEXED, SigmaIndex, split_indexed
from hubsight.parsing.event import Event, LogSet

AZURE = Path(__file__).parents[1] / "data" / "azure"
SIGMAHQ = Path(__file__).parent / "sigma_rules" / "sigmahq"
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


def _event(record: dict[str, Any], *, audit: bool = False, result: str = "SUCCESS") -> Event:
    log_set = LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY if audit else LogSet.INGRESS_AUTHENTICATION
    category = "AuditLogs" if audit else "SignInLogs"
    return example_event(
        log_set,
        raw=msgspec.json.encode(record),
        category=category,
        user="alice.martin@contoso.com",
        result=result,
    )


def _index(rules: list[SigmaDetection]) -> SigmaIndex[SigmaDetection]:
    return SigmaIndex([(rule, rule.requirement) for rule in rules if rule.requirement])


def test_an_event_without_the_literal_reaches_no_rule_needing_it(
    shapes: dict[str, SigmaDetection],
) -> None:
    index = _index([shapes["one_literal"], shapes["and_of_two"], shapes["one_of"]])
    record = _record(SIGN_IN)
    assert index.select(_event(record)) == []
    # and_of_two is screened on its narrowest clause (the app); its condition wants 50053 too.
    record["properties"]["appId"] = "APP-1"
    assert index.select(_event(record)) == [shapes["one_literal"], shapes["and_of_two"]]
    assert shapes["and_of_two"].match(_event(record)) is None
    record["properties"]["appId"] = "app-3"
    record["properties"]["riskState"] = "atRisk"
    assert index.select(_event(record)) == [shapes["one_of"]]


def test_kinds_reaching_few_indexable_rules_run_them_all(
    shapes: dict[str, SigmaDetection],
) -> None:
    literal, free = shapes["one_literal"], shapes["contains"]
    few = [literal] * (MIN_INDEXED - 1) + [free]
    assert split_indexed(few, lambda rule: rule.requirement) == (few, None)
    plain, index = split_indexed([*few, literal], lambda rule: rule.requirement)
    assert plain == [free]
    assert index is not None
    assert len(index) == MIN_INDEXED


@pytest.fixture(scope="module")
def every_rule(shapes: dict[str, SigmaDetection]) -> list[SigmaDetection]:
    vendored = [load.rule for load in load_sigma_rules(SIGMAHQ)]
    return [*shapes.values(), *(r for r in vendored if isinstance(r, SigmaDetection))]


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
def test_the_index_never_drops_a_match(
    every_rule: list[SigmaDetection], data: st.DataObject
) -> None:
    literals = _literals(every_rule)
    audit = data.draw(st.booleans())
    record = _record(AUDIT if audit else SIGN_IN)
    for path, value in data.draw(st.lists(st.sampled_from(literals), max_size=6)):
        _put(record, path, _spelled(value, data.draw(st.integers(0, 5))))
    event = _event(record, audit=audit, result=data.draw(st.sampled_from(["SUCCESS", "FAILURE"])))
    selected = set(map(id, _index(every_rule).select(event)))
    for rule in every_rule:
        if rule.requirement and rule.match(event) is not None:
            assert id(rule) in selected, (rule.meta.title, rule.requirement)


def _fired(rules: list[SigmaDetection], events: list[Event]) -> set[str]:
    engine = DetectionEngine(
        DetectDB(Path(":memory:")),
        rules,
        options=EngineOptions(persist=False, lateness=timedelta(minutes=5)),
    )
    alerts = engine.process(events)
    engine.db.close()
    return {alert.rule_id for alert in alerts}


@pytest.fixture
def always_indexed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A handful of rules are not worth an index (MIN_INDEXED): these tests want it all the same.
    monkeypatch.setattr(sigma_index, "MIN_INDEXED", 1)


@pytest.mark.usefixtures("always_indexed")
def test_rules_without_a_literal_still_run_on_every_event_of_their_kind(
    shapes: dict[str, SigmaDetection],
) -> None:
    rules = [shapes[name] for name in ("contains", "keyword", "only_not", "one_literal")]
    ids = {name: shapes[name].meta.id for name in ("contains", "keyword", "only_not")}
    # The sample sign-in: Edge, a push notification, another app: every literal-free rule fires.
    assert _fired(rules, [_event(_record(SIGN_IN))]) == set(ids.values())


@pytest.mark.usefixtures("always_indexed")
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
