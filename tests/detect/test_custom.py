"""Custom LEQL alerts (pattern, threshold, inactivity) over the embedded store."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hubsight.detect.base import numbered
from hubsight.detect.custom import CustomAlertSpec, SearchOutcome, build_custom_rules
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.signals import signin
from hubsight.errors import ConfigError
from hubsight.query.search import searcher
from hubsight.store.embedded import EmbeddedStore


def test_three_kinds(tmp_path: Path) -> None:
    failures = numbered(
        signin(i / 4, f"u{i}@contoso.com", result="FAILED_BAD_PASSWORD", ip="198.51.100.9")
        for i in range(12)
    )
    now = failures[-1].timestamp + timedelta(minutes=1)
    specs = [
        CustomAlertSpec(
            id="bad-passwords",
            title="Bad password",
            kind="pattern",
            query='where(result = "FAILED_BAD_PASSWORD" AND user = "u3@contoso.com")',
        ),
        CustomAlertSpec(
            id="noisy-ip",
            title="Noisy IP",
            kind="threshold",
            query='where(result = "FAILED_BAD_PASSWORD") groupby(source_ip) calculate(count)',
            threshold=10,
        ),
        CustomAlertSpec(
            id="no-admin",
            title="No admin activity",
            kind="inactivity",
            query='where(log_set = "Cloud Service Admin Activity")',
        ),
    ]
    store = EmbeddedStore(tmp_path)
    try:
        store.write(failures)
        rules = build_custom_rules(specs, searcher(store))
        engine = DetectionEngine(
            DetectDB(Path(":memory:")), rules, options=EngineOptions(persist=False)
        )
        alerts = {a.rule_id: a for a in engine.tick(now)}
        again = engine.tick(now)
    finally:
        store.close()
    assert set(alerts) == {"custom.bad-passwords", "custom.noisy-ip", "custom.no-admin"}
    assert alerts["custom.bad-passwords"].user == "u3@contoso.com"
    assert alerts["custom.bad-passwords"].evidence[0].source_offset == 3
    assert "198.51.100.9 reached 12" in alerts["custom.noisy-ip"].title
    assert again == [], "a second run over the same window updates nothing"


def _searches_nothing(
    query: str, start: datetime, end: datetime, log_sets: tuple[str, ...]
) -> SearchOutcome:
    raise AssertionError("a refused spec runs no search")


def test_threshold_needs_a_value_and_a_calculation() -> None:
    with pytest.raises(ValueError, match="threshold is required"):
        CustomAlertSpec(id="x", title="x", kind="threshold", query="where(a=b)")
    spec = CustomAlertSpec(id="x", title="x", kind="threshold", query="where(a=b)", threshold=1)
    with pytest.raises(ConfigError, match="calculate"):
        build_custom_rules([spec], _searches_nothing)
