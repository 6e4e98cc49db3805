"""An alert whose findings name different callers is about its earliest event's, whatever order
the events came in (one alert per exposure joins a pipeline's writes and people's)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import pytest

from hubsight.detect.alerts import Alert, AlertFilter
from hubsight.detect.base import EventRef, Finding, RuleContext, example_event
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.parsing.event import Event, LogSet

from tests.detect.cites import Cites, CitesConfig


class _CitesCaller(Cites):
    """Cites every sign-in under one entity, naming its caller."""

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        yield Finding(
            entity="e",
            title=f"Cites {event.user}",
            at=event.timestamp,
            evidence=[EventRef.of(event)],
            user=event.user,
            source_ip=event.source_ip,
        )


def _write(minute: int, user: str, ip: str) -> Event:
    return example_event(
        LogSet.INGRESS_AUTHENTICATION, minute, offset=minute, user=user, source_ip=ip
    )


_PIPELINE = _write(0, "pipeline@contoso.com", "203.0.113.7")
_PERSON = _write(30, "vera@contoso.com", "198.51.100.4")


def _alert(batches: list[list[Event]], path: Path | None) -> Alert:
    db = DetectDB(path / "detect.sqlite3" if path else Path(":memory:"))
    engine = DetectionEngine(
        db,
        [_CitesCaller(CitesConfig())],
        options=EngineOptions(learning=timedelta(0), persist=path is not None),
    )
    out: dict[str, Alert] = {}
    for batch in batches:
        out.update((a.dedup_key, a) for a in engine.process(batch))
    if path:
        # The stored row's user column, which filters and notables read, moved with it.
        (stored,) = engine.alerts.find(AlertFilter(user="pipeline@contoso.com"))
        assert stored.dedup_key in out
    engine.close()
    (alert,) = out.values()
    return alert


@pytest.mark.parametrize("persist", [False, True], ids=["in-memory", "stored"])
@pytest.mark.parametrize(
    "batches",
    [[[_PIPELINE, _PERSON]], [[_PERSON, _PIPELINE]], [[_PERSON], [_PIPELINE]]],
    ids=["in order", "reversed in a batch", "the earlier one a batch late"],
)
def test_the_alert_names_its_earliest_events_caller_in_any_order(
    batches: list[list[Event]], persist: bool, tmp_path: Path
) -> None:
    alert = _alert(batches, tmp_path if persist else None)
    assert (alert.user, alert.source_ip, alert.title) == (
        "pipeline@contoso.com",
        "203.0.113.7",
        "Cites pipeline@contoso.com",
    )
    assert [ref.source_offset for ref in alert.evidence] == [0, 30]
