"""A source's health: `stalled` comes and goes with the broker's answers, and never hides an
error already shown."""

from __future__ import annotations

from hubsight.health import SourceHealth, State
from hubsight.sources.diagnose import Diagnosis, Problem

_STALLED = Diagnosis(Problem.STALLED, "the broker has not answered for 20 s", "check it")


def test_stalled_then_answering_goes_back_to_what_it_was_doing() -> None:
    health = SourceHealth("azure")
    health.stored(10, 100, None)
    health.stalled(_STALLED)
    snapshot = health.snapshot()
    assert (snapshot["state"], snapshot["problem"], snapshot["hint"]) == (
        "stalled",
        "stalled",
        "check it",
    )
    assert snapshot["last_error"] == "the broker has not answered for 20 s"
    health.answering(waiting=False)
    assert (health.state, health.problem, health.hint) == (State.RUNNING, None, None)
    # Before any data: back to waiting for it.
    health.stalled(_STALLED)
    health.answering(waiting=True)
    assert health.state is State.WAITING
    # Data stored while stalled ends it too.
    health.stalled(_STALLED)
    health.stored(1, 10, None)
    assert (health.state, health.problem) == (State.RUNNING, None)


def test_an_error_shown_is_not_hidden_by_stalled_and_answering_leaves_it() -> None:
    health = SourceHealth("azure")
    health.error(Diagnosis(Problem.UNREACHABLE, "Connection refused", "start the broker"))
    health.stalled(_STALLED)
    health.answering(waiting=False)
    assert (health.state, health.problem, health.last_error) == (
        State.ERROR,
        Problem.UNREACHABLE,
        "Connection refused",
    )
