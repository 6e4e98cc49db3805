"""Engines for detection tests: in memory or in a temporary directory, no learning period."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.base import Rule
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions

MakeEngine = Callable[..., DetectionEngine]


@pytest.fixture
def make_engine() -> MakeEngine:
    """Build an engine over rules; persisted under ``path`` when given, in memory otherwise."""

    def build(
        rules: Sequence[Rule[Any]],
        path: Path | None = None,
        *,
        learning: timedelta = timedelta(0),
    ) -> DetectionEngine:
        db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
        options = EngineOptions(learning=learning, persist=path is not None)
        return DetectionEngine(db, rules, options=options)

    return build
