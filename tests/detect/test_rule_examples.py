"""Every shipped rule's own examples: positives fire that rule, negatives do not.

Built-in rules bring their examples in code; the Sigma content brings Event Hub records beside
each rule (``detect/content/<family>/<rule>.examples.json``), parsed by the real parser first.
"""

from __future__ import annotations

from typing import Any

import pytest

from hubsight.detect.base import Example, Rule
from hubsight.detect.ruleset import build_rule, rule_classes, run_example

CASES = [
    pytest.param(cls, example, id=f"{cls.meta.id}[{example.name}]")
    for cls in rule_classes()
    for example in cls.examples()
]


@pytest.mark.parametrize(("cls", "example"), CASES)
def test_rule_example(cls: type[Rule[Any]], example: Example) -> None:
    fired = run_example(build_rule(cls, {}), example)
    assert bool(fired) is example.fires, [a.title for a in fired]
    for alert in fired:
        assert alert.severity is not None
        assert alert.title
        if example.check_at is None:
            assert alert.evidence, "an alert on events names its evidence"


def test_every_rule_has_a_positive_and_a_negative_example() -> None:
    for cls in rule_classes():
        kinds = {example.fires for example in cls.examples()}
        assert kinds == {True, False}, cls.meta.id


def test_rule_ids_are_unique() -> None:
    ids = [cls.meta.id for cls in rule_classes()]
    assert len(ids) == len(set(ids))
