"""Every shipped rule's own examples: positives fire that rule, negatives do not.

Built-in rules bring their examples in code; the Sigma content brings Event Hub records beside
each rule (``detect/content/<family>/<rule>.examples.json``), parsed by the real parser first.
"""

from __future__ import annotations

from typing import Any

import pytest

from hubsight.detect.base import Example, Rule
from hubsight.detect.ruleset import build_rule, rule_classes, run_example

PAIRS = [(cls, example) for cls in rule_classes() for example in cls.examples()]
CASES = [pytest.param(cls, ex, id=f"{cls.meta.id}[{ex.name}]") for cls, ex in PAIRS]


@pytest.mark.parametrize(("cls", "example"), CASES)
def test_rule_example(cls: type[Rule[Any]], example: Example) -> None:
    fired = run_example(build_rule(cls, {}), example)
    assert bool(fired) is example.fires, [a.title for a in fired]
    assert example.met_by(len(fired)), [a.title for a in fired]
    for alert in fired:
        assert alert.severity is not None
        assert alert.title
        if example.check_at is None:
            assert alert.evidence, "an alert on events names its evidence"


def test_every_rule_has_a_positive_and_a_negative_example() -> None:
    kinds: dict[str, set[bool]] = {cls.meta.id: set() for cls in rule_classes()}
    for cls, example in PAIRS:
        kinds[cls.meta.id].add(example.fires)
    assert {rule_id for rule_id, seen in kinds.items() if seen != {True, False}} == set()


def test_rule_ids_are_unique() -> None:
    ids = [cls.meta.id for cls in rule_classes()]
    assert len(ids) == len(set(ids))
