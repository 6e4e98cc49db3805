"""The compiled matcher of a kind's Sigma rules finds exactly what each rule's condition tree,
evaluated node by node with the general field reader, finds.

The rules are the shipped content, our own test rules and rules generated from the values of
simulated records; the events are a simulated tenant's, with every scenario planted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubsight.detect.base import example_event
from hubsight.detect.content import ShippedRule, content_rules
from hubsight.detect.sigma import SigmaDetection, load_sigma_rules
from hubsight.detect.sigma.condition import (
    AllOf,
    AnyOf,
    Condition,
    FieldTest,
    Negation,
    Opaque,
    View,
)
from hubsight.detect.sigma.fields import SERVICES, VIRTUAL_PREFIX
from hubsight.detect.sigma.index import SigmaIndex
from hubsight.detect.sigma.matcher import _reader, compile_matcher
from hubsight.detect.sigma.record import RECORDS, AzureRecord, FieldReader, RecordCache
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.simulate import SCENARIOS, Simulation, SimulationConfig

RULES = Path(__file__).parent / "sigma_rules"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# The services whose records the simulator writes most, with their categories' rules generated.
GENERATED = ("signinlogs", "auditlogs", "activitylogs")


@pytest.fixture(scope="module")
def events() -> list[Event]:
    config = SimulationConfig(
        seed=5,
        users=40,
        rate=12.0,
        scenarios=tuple(SCENARIOS),
        scenario_interval=timedelta(minutes=1),
        start=START,
        duration=timedelta(minutes=30),
    )
    parser = MessageParser(log_name="sim", registry=default_registry(None, None))
    parsed = [e for m in Simulation(config).messages() for e in parser.parse(m.as_message())]
    return [e for e in parsed if e.category]


@pytest.fixture(scope="module")
def fixed_rules() -> list[SigmaDetection]:
    shipped = [cls.loaded for cls in content_rules() if issubclass(cls, ShippedRule)]
    ours = [load.rule for folder in ("shapes", "own") for load in load_sigma_rules(RULES / folder)]
    return [rule for rule in (*shipped, *ours) if isinstance(rule, SigmaDetection)]


@pytest.fixture(scope="module")
def seen(events: list[Event]) -> dict[str, list[tuple[str, Any]]]:
    # Per generated service, (Sigma column, value) pairs its records hold: rules made of them
    # match some events and not others.
    found: dict[str, list[tuple[str, Any]]] = {}
    for name in GENERATED:
        service = SERVICES[name]
        pairs: set[tuple[str, Any]] = set()
        records = [
            record
            for e in events
            if (e.category or "").lower() in service.categories
            and (record := RECORDS.record(e)) is not None
        ]
        for column, paths in sorted(service.columns.items()):
            if paths[0].startswith(VIRTUAL_PREFIX):
                continue
            reader = FieldReader(paths[0])
            for record in records[::7]:
                for value in reader.values(record)[:1]:
                    if isinstance(value, str | int) and not isinstance(value, bool):
                        pairs.add((column, value))
        found[name] = sorted(pairs, key=repr)
    return found


def _holds(node: Condition, record: AzureRecord) -> bool:
    # The reference the compiled code is compared with: the tree walked node by node, each
    # field read by ``FieldReader``'s general path, each test spelled out.
    if isinstance(node, AllOf):
        return all(_holds(part, record) for part in node.parts)
    if isinstance(node, AnyOf):
        return any(_holds(part, record) for part in node.parts)
    if isinstance(node, Negation):
        return not _holds(node.part, record)
    if isinstance(node, Opaque):
        return bool(node.test(record))
    assert isinstance(node, FieldTest)
    reader = FieldReader(node.path)
    views: dict[str, Callable[[], Sequence[Any]]] = {
        "text": lambda: [record.text()],
        "lowered": lambda: reader.lowered(record),
        "numbers": lambda: reader.numbers(record),
        "values": lambda: reader.values(record),
    }
    values = views[node.view]()
    wanted = node.constant
    if node.op == "has":
        return wanted in values
    if node.op == "meets":
        return any(value in wanted for value in values)
    if node.op == "contains":
        return any(wanted in value for value in values)
    if node.op == "startswith":
        return any(value.startswith(wanted) for value in values)
    if node.op == "endswith":
        return any(value.endswith(wanted) for value in values)
    assert node.op == "call", node.op
    return any(wanted(value) for value in values)


def _selected(rules: list[SigmaDetection], event: Event) -> list[SigmaDetection]:
    # The rules whose condition holds on a record decoded apart (nothing the matcher keeps in
    # its record's memo is seen), as the index counts them: a rule whose condition raises is
    # handed to the engine, which records the error.
    record = RecordCache().record(event)
    if record is None:
        return []
    chosen = []
    for rule in rules:
        try:
            holds = _holds(rule.condition, record)
        except Exception:  # noqa: BLE001 - counted as the index counts it
            holds = True
        if holds:
            chosen.append(rule)
    return chosen


def _compare(rules: list[SigmaDetection], events: list[Event]) -> int:
    # Per category, as the engine holds them: the compiled matcher, unindexed and indexed,
    # against the reference. Returns how many matches were compared.
    matched = 0
    for category in sorted({(e.category or "").lower() for e in events}):
        mine = [rule for rule in rules if category in rule.categories]
        if not mine:
            continue
        targets = [(rule, rule.requirement, rule.condition) for rule in mine]
        whole, indexed = SigmaIndex(targets), SigmaIndex(targets, least=1)
        for event in events:
            if (event.category or "").lower() != category:
                continue
            expected = _selected(mine, event)
            assert whole.select(event) == expected, (event.category, event.raw)
            _check_memo(event)
            assert indexed.select(event) == expected, (event.category, event.raw)
            # A rule's own predicate, compiled alone (the engine's evaluation, correlations).
            assert [rule for rule in mine if rule.match(event)] == expected, event.raw
            matched += len(expected)
    return matched


def _check_memo(event: Event) -> None:
    # What the matcher left in the record's memo for the rules run after it is what the general
    # reader finds on a record decoded apart.
    record = RECORDS.record(event)
    assert record is not None
    fresh = RecordCache().record(event)
    assert fresh is not None
    for key, found in list(record.memo.items()):
        path, _, view = key.partition("\0")
        if view == "lower":
            assert found == FieldReader(path).lowered(fresh), (key, event.raw)
        elif view == "number":
            assert found == FieldReader(path).numbers(fresh), (key, event.raw)


def test_the_matcher_finds_what_the_reference_finds_with_every_shipped_rule(
    events: list[Event], fixed_rules: list[SigmaDetection]
) -> None:
    # Hundreds of matches: the comparison is not of empty lists.
    assert _compare(fixed_rules, events) > 300


def _value(value: Any, how: str, cut: int) -> tuple[str, Any]:
    # A Sigma modifier and value that relate to a value the records hold.
    if isinstance(value, int):
        return {"gte": ("|gte", value), "lt": ("|lt", value)}.get(how, ("", value))
    text = value[: max(1, len(value) - cut)] if how == "startswith" else value
    if how == "contains":
        text = value[cut % max(1, len(value)) :][:6] or value
    if how == "endswith":
        text = value[cut % max(1, len(value)) :] or value
    if how == "re":
        return "|re", "(?i)" + json.dumps(value[:5])[1:-1].replace(".", "\\.") + ".*"
    if how == "cased":
        return "|cased", value
    if how == "wild":
        return "", value[:2] + "*" + value[-2:] if len(value) > 4 else value
    if how == "upper":
        return "", value.upper()
    return ("" if how == "exact" else f"|{how}"), text


_HOWS = ["exact", "upper", "contains", "startswith", "endswith", "re", "cased", "wild", "gte", "lt"]
_CONDITIONS = [
    "selection",
    "selection and not filter",
    "1 of selection*",
    "all of selection*",
    "selection or keywords",
    "not filter",
]


def _rule(data: st.DataObject, seen: dict[str, list[tuple[str, Any]]], number: int) -> str:
    service = data.draw(st.sampled_from(GENERATED))
    pairs = seen[service]

    def selection() -> dict[str, Any]:
        picked: dict[str, Any] = {}
        for column, value in data.draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=3)):
            how = data.draw(st.sampled_from(_HOWS))
            modifier, wanted = _value(value, how, data.draw(st.integers(0, 9)))
            if data.draw(st.booleans()):
                wanted = [wanted, "something-else"] if isinstance(wanted, str) else wanted
            picked[column + modifier] = wanted
        return picked

    keyword = data.draw(st.sampled_from(pairs))[1]
    detection = {
        "selection": selection(),
        "selection_two": selection(),
        "filter": selection(),
        "keywords": [str(keyword)[:8]],
        "condition": data.draw(st.sampled_from(_CONDITIONS)),
    }
    return yaml.safe_dump(
        {
            "title": f"generated {number}",
            "logsource": {"product": "azure", "service": service},
            "detection": detection,
        }
    )


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_matcher_finds_what_the_reference_finds_with_generated_rules(
    events: list[Event],
    seen: dict[str, list[tuple[str, Any]]],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
) -> None:
    folder = tmp_path_factory.mktemp("generated")
    for number in range(8):
        (folder / f"rule{number}.yml").write_text(_rule(data, seen, number), "utf-8")
    rules = [load.rule for load in load_sigma_rules(folder)]
    _compare([rule for rule in rules if isinstance(rule, SigmaDetection)], events[::3])


HOSTILE = [
    "\"'); __import__('os').system('exit 3') #",
    "a\nb = __import__('os')\n",
    "k0) or (True",
    "\\'\\\"{}",
]

# A field name as hostile (without a dot, which would part its keys).
KEY = "x') or __import__('os') or (\"\n"


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_rule_value_is_matched_as_data(tmp_path: Path, value: str) -> None:
    rule = {
        "title": "hostile",
        "logsource": {"product": "azure", "service": "signinlogs"},
        "detection": {
            "selection": {"AppDisplayName": value},
            "agent": {"UserAgent|contains": value},
            "other": {f"properties.deviceDetail.{KEY}": value},
            "condition": "selection or agent or other",
        },
    }
    (tmp_path / "hostile.yml").write_text(yaml.safe_dump(rule), "utf-8")
    [load] = load_sigma_rules(tmp_path)
    assert isinstance(load.rule, SigmaDetection), load.reason
    index = SigmaIndex([(load.rule, (), load.rule.condition)])

    def sign_in(**properties: Any) -> Event:
        raw = msgspec.json.encode({"category": "SignInLogs", "properties": properties})
        return example_event(LogSet.INGRESS_AUTHENTICATION, raw=raw, category="SignInLogs")

    # The value matches itself (in another case), as text and nothing more.
    assert index.select(sign_in(appDisplayName=value.upper())) == [load.rule]
    assert index.select(sign_in(userAgent=f"x{value}y")) == [load.rule]
    assert index.select(sign_in(deviceDetail={KEY: value})) == [load.rule]
    assert index.select(sign_in(deviceDetail={KEY: "x"})) == []
    assert index.select(sign_in(appDisplayName=value + "!")) == []
    assert index.select(sign_in(appDisplayName="anything")) == []


def test_the_generated_source_holds_no_rule_text() -> None:
    secret = "__import__('os').system('exit 3')"
    test = FieldTest(f"properties.{secret}", "lowered", "has", secret)
    matcher = compile_matcher((AllOf((test, test)),))
    source = " ".join(str(c) for c in matcher.__code__.co_consts + matcher.__code__.co_names)
    assert "__import__" not in source
    assert "os" not in matcher.__code__.co_names


def _record(data: Any) -> AzureRecord:
    event = example_event(
        LogSet.INGRESS_AUTHENTICATION, raw=msgspec.json.encode(data), category="SignInLogs"
    )
    record = RECORDS.record(event)
    assert record is not None
    return record


@pytest.mark.parametrize(
    ("properties", "holds"),
    [
        ({"appId": "App-1"}, True),
        ({"AppId": "APP-1"}, True),  # another spelling: the general path
        ({"appid": "app-1", "appId": None}, False),  # the exact spelling, null, comes first
        ({"appId": ["x", "App-1"]}, True),  # a list
        ({"appId": 1}, False),
        ({"appId": {"value": "App-1"}}, False),  # an object, compared as its JSON text
        ({"appId": "App-10"}, False),
        ({"key": "AppID", "value": "App-1"}, True),  # a {"key", "value"} pair names the step
        ({"key": "other", "value": "App-1"}, False),
        ({}, False),
    ],
)
def test_the_fast_read_of_a_field_defers_to_the_general_one(
    properties: dict[str, Any], holds: bool
) -> None:
    test = FieldTest("properties.appId", "lowered", "has", "app-1")
    matcher = compile_matcher((test,))
    # Properties as an object and as JSON text, as Azure sends them in some categories.
    for shape in ({"properties": properties}, {"properties": json.dumps(properties)}):
        assert _holds(test, _record(shape)) is holds
        record = _record(shape)
        assert matcher(record, ["rule"], ["fallback"]) == (["rule"] if holds else [])
        # The rules run after the matcher find in the record's memo what the general read finds.
        reader = FieldReader("properties.appId")
        assert record.memo[reader.lowered_key] == reader.lowered(_record(shape))


# Values a field may hold, as the fast reads must find them: exactly what the general one does.
SCALARS = [
    "Text",
    "12",
    " 12 ",
    "1e2",
    "1_0",
    "nan",
    "",
    True,
    False,
    None,
    0,
    -3,
    12,
    1.5,
    1e20,
    float("inf"),
    2**70,
    [],
    ["a", 1],
    {"value": 1},
]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
@pytest.mark.parametrize("path", ["properties.appId", "properties.status.errorCode", "resultType"])
@pytest.mark.parametrize("view", ["lowered", "numbers"])
def test_the_fast_reads_of_a_value_find_what_the_general_read_finds(
    value: Any, path: str, view: View
) -> None:
    data: dict[str, Any] = {}
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    wanted = FieldReader(path).lowered if view == "lowered" else FieldReader(path).numbers
    expected = wanted(_record(data))
    read = _reader(path, view)
    # As text: a NaN equals no NaN, itself included.
    assert repr(read(_record(data))) == repr(expected)
    # Both ways of the test (present and absent) find something different for most values.
    for constant in [c for c in (*expected, "text", 12.0, 12) if c == c]:  # no NaN
        test = FieldTest(path, view, "has", constant)
        assert compile_matcher((test,))(_record(data), ["rule"], ["fallback"]) == (
            ["rule"] if constant in expected else []
        )
    # A key missing, and missing under another spelling only, as the general read finds them.
    node[last + "X"] = node.pop(last)
    assert read(_record(data)) == wanted(_record(data)) == []
    node[last.upper()] = node.pop(last + "X")
    assert repr(read(_record(data))) == repr(wanted(_record(data))) == repr(expected)


@pytest.mark.parametrize(("result", "holds"), [("SUCCESS", True), ("FAILURE", False)])
def test_a_derived_field_is_read_as_the_general_reader_reads_it(result: str, holds: bool) -> None:
    test = FieldTest(f"{VIRTUAL_PREFIX}status", "lowered", "has", "success")

    def record() -> AzureRecord:
        event = example_event(
            LogSet.INGRESS_AUTHENTICATION, raw=b"{}", category="SignInLogs", result=result
        )
        found = RECORDS.record(event)
        assert found is not None
        return found

    read = record()
    assert compile_matcher((test,))(read, ["rule"], ["fallback"]) == (["rule"] if holds else [])
    reader = FieldReader(test.path)
    assert read.memo[reader.lowered_key] == reader.lowered(record())
