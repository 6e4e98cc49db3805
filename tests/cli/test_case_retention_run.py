"""``hubsight run`` applies case retention: a real process deletes the closed case that is due."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.detect.db import DetectDB
from hubsight.detect.expiry import DAY_S
from hubsight.detect.investigations import InvestigationStore, Triage
from hubsight.service import SOCKET_FILE

from tests.detect.test_investigations import T0, alert, save
from tests.support import wait_until


def _investigations(data_dir: Path) -> dict[str, str]:
    db = DetectDB.in_dir(data_dir)
    try:
        return {r["id"]: r["status"] for r in db.rows("SELECT id, status FROM investigations")}
    finally:
        db.close()


def test_run_deletes_the_closed_case_that_is_due_and_keeps_the_open_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    db = DetectDB.in_dir(data_dir)
    (closed,) = save(db, alert("a", T0, user="ana@contoso.com"))
    (kept,) = save(db, alert("b", T0, user="bo@contoso.com"))
    InvestigationStore(db).update(closed, Triage(status="closed"), actor="ana")
    # Both last changed 40 days ago; only the closed one is due under 30 days.
    then = time.time() - 40 * DAY_S
    for table in ("alerts", "investigations"):
        db.execute(f"UPDATE {table} SET updated_at = ?", (then,))  # noqa: S608
    for table in ("alert_history", "investigation_history"):
        db.execute(f"UPDATE {table} SET at = ?", (then,))  # noqa: S608
    db.close()
    done = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "retention", "set", "alerts", "30"]
    )
    assert done.exit_code == 0, done.output
    process = subprocess.Popen(
        [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), "run", "--no-web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: (data_dir / SOCKET_FILE).exists(), 120, "hubsight run to serve")
        # The first of the once-a-minute jobs runs as the service starts serving.
        wait_until(lambda: closed not in _investigations(data_dir), 60, "the closed case to go")
        assert _investigations(data_dir) == {kept: "open"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "case retention: deleted 1 alerts and 1 investigations" in err
