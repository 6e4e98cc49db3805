"""A source's health: `stalled` comes and goes with the broker's answers, and never hides an
error already shown."""

from __future__ import annotations

from hubsight.health import HISTORY_MINUTES, DetectionLag, SourceHealth, State
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


def test_brokers_down_never_hides_the_cause_said_before_it() -> None:
    # librdkafka reports "1/1 brokers are down" right after the refused connection that says why.
    down = Diagnosis(Problem.UNREACHABLE, "1/1 brokers are down", "check the address")
    health = SourceHealth("azure")
    health.error(Diagnosis(Problem.UNREACHABLE, "Connection refused", "start the broker"))
    health.error(down)
    assert (health.last_error, health.hint) == ("Connection refused", "start the broker")
    health.error(Diagnosis(Problem.AUTHENTICATION, "SASL authentication failed", "check the key"))
    health.error(down)
    assert health.problem is Problem.AUTHENTICATION
    # Alone, or once the source has recovered, it is what there is to say.
    fresh = SourceHealth("azure")
    fresh.error(down)
    assert fresh.last_error == "1/1 brokers are down"
    health.answering(waiting=False)
    health.stored(1, 10, None)
    health.error(down)
    assert health.last_error == "1/1 brokers are down"
    # A specific cause replaces the generic one.
    fresh.error(Diagnosis(Problem.UNREACHABLE, "Connection refused", "start the broker"))
    assert fresh.last_error == "Connection refused"


class _Clock:
    """Wall-clock seconds that move only when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_events_per_minute_history_covers_the_last_hour_by_clock_minute() -> None:
    clock = _Clock(1_767_225_600.0)  # 2026-01-01T00:00:00Z
    health = SourceHealth("azure", clock=clock)
    health.stored(5, 0, None)
    clock.now += 30
    health.stored(2, 0, None)  # the same minute: added to it
    clock.now += 31
    health.stored(4, 0, None)  # the next minute
    history = health.snapshot()["events_per_minute_history"]
    assert len(history) == HISTORY_MINUTES
    assert history[-2:] == [["2026-01-01T00:00:00+00:00", 7], ["2026-01-01T00:01:00+00:00", 4]]
    assert sum(n for _, n in history) == 11
    # The first minute is still shown 59 minutes later, and gone at the 60th.
    clock.now = 1_767_225_600.0 + 59 * 60
    assert health.snapshot()["events_per_minute_history"][0] == ["2026-01-01T00:00:00+00:00", 7]
    clock.now += 60
    health.stored(1, 0, None)
    history = health.snapshot()["events_per_minute_history"]
    assert history[0] == ["2026-01-01T00:01:00+00:00", 4]
    assert (history[-1], sum(n for _, n in history)) == (["2026-01-01T01:00:00+00:00", 1], 5)
    assert len(health._per_minute) == 2  # nothing older than the hour is kept


def test_detection_behind_says_at_least_what_was_counted_and_no_figure_at_none() -> None:
    # Counted as a catch-up begins: batches stored after it are not in the figure.
    assert DetectionLag(1).message() == "detection catching up: at least 1 event behind"
    assert (
        DetectionLag(2_500, "timeout")
        .message()
        .startswith(
            "detection behind: at least 2,500 events behind; it cannot read them back from the "
            "event store (timeout)"
        )
    )
    # Counted down to none while it still reads what was stored meanwhile: no figure, which
    # would say that nothing waits.
    for events in (0, None):
        assert DetectionLag(events).message() == "detection catching up"
        assert DetectionLag(events, "timeout").message().startswith("detection behind; ")
