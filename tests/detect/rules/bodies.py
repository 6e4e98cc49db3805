"""Any body in an Activity Log write, for the property tests of rules that read bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec
from hypothesis import strategies as st

from hubsight.detect.base import Rule, Severity, example_event
from hubsight.detect.ruleset import build_rule
from hubsight.parsing.event import LogSet

from tests.detect.context import NoContext

# Where a body sits in a record: the Start record's request, the Success record's response.
BODY_KEYS = st.sampled_from(["requestbody", "responseBody"])


def values(keys: Iterable[str], words: Iterable[str]) -> st.SearchStrategy[object]:
    """JSON values of a few levels whose objects use ``keys`` and whose strings are often
    ``words``."""
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-5, 70000)
        | st.sampled_from(list(words))
        | st.text(max_size=6),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(list(keys)), inner, max_size=4)
        ),
        max_leaves=16,
    )


def judge_body(
    rules: Iterable[type[Rule[Any]]],
    operation: str,
    resource: str,
    key: str,
    body: object,
    *,
    text: bool,
) -> None:
    """Run ``rules`` on a write of ``operation`` carrying ``body`` under ``key`` (as JSON text
    when ``text``, as Azure sends it, else as an object): each finding is graded and titled."""
    record = {
        "category": "Administrative",
        "operationName": operation,
        "properties": {key: json.dumps(body) if text else body},
    }
    event = example_event(
        LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY,
        operation=operation,
        category="Administrative",
        resource_id=resource,
        result="STARTED",
        raw=msgspec.json.encode(record),
    )
    for cls in rules:
        rule = build_rule(cls, {})
        for finding in rule.evaluate(event, NoContext()):
            assert finding.severity in (Severity.HIGH, Severity.MEDIUM, Severity.LOW)
            assert finding.title
