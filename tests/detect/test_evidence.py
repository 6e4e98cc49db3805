"""An alert's evidence: the union of what its findings cite, earliest first, capped; its
context: the last value of each key, gathered keys joined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hubsight.detect.alerts import MAX_EVIDENCE, merge_context, merge_evidence
from hubsight.detect.base import EventRef

_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _ref(second: int) -> EventRef:
    return EventRef(_START + timedelta(seconds=second), "log", "topic", 0, second, 0)


def test_union_sorted_without_duplicates() -> None:
    assert merge_evidence([_ref(1), _ref(3)], [_ref(2), _ref(3)]) == [_ref(1), _ref(2), _ref(3)]


def test_a_full_list_keeps_its_earliest_events() -> None:
    full = [_ref(i) for i in range(MAX_EVIDENCE)]
    # Later events fall off the end of a full list (a loud rule's alert).
    assert merge_evidence(full, [_ref(MAX_EVIDENCE + 5)]) == full
    # One just before the last kept event gets in and pushes the last out.
    before_last = EventRef(_START + timedelta(seconds=MAX_EVIDENCE - 1), "log", "topic", 0, -1, 0)
    merged = merge_evidence(full, [before_last])
    assert len(merged) == MAX_EVIDENCE
    assert merged[-1] == before_last
    # An earlier event always gets in.
    assert merge_evidence(full, [_ref(-1)])[0] == _ref(-1)
    assert merge_evidence(full, []) == full


def test_a_full_list_is_unchanged_by_events_it_holds_or_that_come_after_it() -> None:
    full = [_ref(i) for i in range(MAX_EVIDENCE)]
    assert merge_evidence(full, [full[0], full[50], _ref(MAX_EVIDENCE + 1)]) == full
    # One it does not hold, before its last, still gets in beside those it holds.
    missing = EventRef(_START + timedelta(seconds=3), "log", "topic", 0, -1, 0)
    merged = merge_evidence(full, [full[0], missing, _ref(MAX_EVIDENCE + 1)])
    assert merged == sorted([*full, missing])[:MAX_EVIDENCE]


def test_later_events_are_appended_in_order_once() -> None:
    assert merge_evidence([_ref(1)], [_ref(5), _ref(4), _ref(5), _ref(1)]) == [
        _ref(1),
        _ref(4),
        _ref(5),
    ]
    assert merge_evidence([], [_ref(2), _ref(1)]) == [_ref(1), _ref(2)]


def test_refs_equal_up_to_a_missing_field_are_ordered() -> None:
    # Same time and log; one ref lacks where it came from (None): msgspec's field-by-field
    # order raised TypeError comparing None with a value.
    bare = EventRef(_START, "log", None, None, None, None)
    placed = EventRef(_START, "log", "topic", 0, 7, 0)
    no_index = EventRef(_START, "log", "topic", 0, 7, None)
    assert bare < placed
    assert placed > bare
    assert not placed < bare
    assert no_index <= placed
    assert placed >= no_index
    assert sorted([placed, no_index, bare]) == [bare, no_index, placed]
    # Both ways through merge_evidence: a list ending at ``bare`` and one holding ``placed``.
    assert merge_evidence([bare], [placed]) == [bare, placed]
    assert merge_evidence([placed], [bare, no_index]) == [bare, no_index, placed]
    assert merge_evidence([_ref(-1), placed], [bare]) == [_ref(-1), bare, placed]


def test_refs_of_the_same_time_are_placed_by_the_rest_of_them() -> None:
    def at_start(offset: int) -> EventRef:
        return EventRef(_START, "log", "topic", 0, offset, 0)

    old = [_ref(-5), at_start(2), at_start(4), at_start(6)]
    # Held already (same time as others and as the last): nothing changes.
    assert merge_evidence(old, [at_start(4), at_start(6), at_start(2)]) is old
    # Between refs of the same time, before the last, and after it.
    assert merge_evidence(old, [at_start(5)]) == [
        _ref(-5),
        at_start(2),
        at_start(4),
        at_start(5),
        at_start(6),
    ]
    assert merge_evidence(old, [at_start(1)]) == [_ref(-5), at_start(1), *old[1:]]
    assert merge_evidence(old, [at_start(9), at_start(7)]) == [*old, at_start(7), at_start(9)]
    # After every ref of its time but before a later one.
    assert merge_evidence([*old, _ref(3)], [at_start(8)]) == [*old, at_start(8), _ref(3)]


def test_a_context_nothing_changes_is_given_back_as_it_is() -> None:
    held = {"sigma_author": "someone", "target": "/subscriptions/x"}
    assert merge_context(held, {"sigma_author": "someone"}) is held
    assert merge_context(held, {}) is held
    assert held == {"sigma_author": "someone", "target": "/subscriptions/x"}


def test_a_context_changed_is_a_new_dict_with_the_change() -> None:
    held: dict[str, object] = {"sigma_author": "someone", "vendor_alert_ids": ["a"]}
    assert merge_context(held, {"sigma_author": "other"}) == {
        "sigma_author": "other",
        "vendor_alert_ids": ["a"],
    }
    assert merge_context(held, {"new": None}) == {**held, "new": None}
    # A gathered key joins even a list it holds already part of.
    assert merge_context(held, {"vendor_alert_ids": ["a", "b"]})["vendor_alert_ids"] == ["a", "b"]
    assert merge_context(held, {"vendor_alert_ids": ["a"]}) == held
    assert held == {"sigma_author": "someone", "vendor_alert_ids": ["a"]}
