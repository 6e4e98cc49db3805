"""Write a detect.sqlite3 with an older hubsight, as an upgrade-test fixture.

    mkdir /tmp/old && git archive COMMIT src | tar x -C /tmp/old
    PYTHONPATH=/tmp/old/src .venv/bin/python scripts/make-detect-fixture.py NAME

runs that release's engine (its own code, this venv's libraries) over sign-ins that one test
rule cites in batches, so its alerts' evidence is stored in several parts, and packs the
database with ``alerts.json`` (the alerts as that release reads them back) as
tests/data/datadirs/NAME.tar.gz. The rule is tests/detect/cites.py's ``Cites``.
"""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
from datetime import timedelta
from pathlib import Path

import hubsight
from hubsight.detect.alerts import AlertFilter, AlertStore
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.detect.cites import Cites, CitesConfig, event  # noqa: E402 - after the path


def main(name: str) -> None:
    """Write tests/data/datadirs/NAME.tar.gz."""
    print("writing with", hubsight.__file__)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        db = DetectDB(data / "detect.sqlite3")
        options = EngineOptions(learning=timedelta(0))
        rules = [Cites(CitesConfig(dedup_minutes=30))]
        engine = DetectionEngine(db, rules, options=options)
        # One alert of 22 refs (parts appended, then written again whole for the earlier 2.5,
        # then appended to), and one of 3 in one part, 30 minutes after.
        for minutes in ([*range(5)], [*range(5, 12)], [*range(12, 20)], [2.5], [60, 61, 62], [20]):
            engine.process([event(m, offset=int(m * 10)) for m in minutes])
        engine.close()
        db = DetectDB(data / "detect.sqlite3")
        alerts = [a.summary() for a in AlertStore(db).find(AlertFilter(limit=100))]
        db.close()
        (data / "alerts.json").write_text(json.dumps(alerts, indent=1) + "\n")
        out = ROOT / "tests/data/datadirs" / f"{name}.tar.gz"
        with tarfile.open(out, "w:gz") as archive:
            for path in ("detect.sqlite3", "alerts.json"):
                archive.add(data / path, arcname=f"data/{path}")
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1])
