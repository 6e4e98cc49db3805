"""``Detection``: what the collector calls after each stored batch, across a restart and live
settings changes (API in the process, CLI in another)."""

from __future__ import annotations

import gc
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hubsight.detect.alerts import Alert
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import GC_THRESHOLDS
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.rules.signals import signin
from hubsight.detect.runtime import Detection
from hubsight.detect.settings import SettingsStore
from hubsight.errors import StoreError
from hubsight.parsing.event import Event
from hubsight.web.detect_routes import router


@contextmanager
def _syslog_receiver(data_dir: Path) -> Iterator[socket.socket]:
    """A UDP syslog receiver that ``data_dir``'s detect.toml sends High alerts to."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(0.5)
        port = server.getsockname()[1]
        (data_dir / "detect.toml").write_text(
            "learning_days = 0\n"
            "[[notify.syslog]]\n"
            f'host = "127.0.0.1"\nport = {port}\nseverities = ["High"]\n'
        )
        yield server


def test_opening_an_engine_tunes_the_garbage_collector(tmp_path: Path) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        Detection.open(tmp_path).close()
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)


def test_on_stored_alerts_notifies_once_and_survives_restart(tmp_path: Path) -> None:
    (example,) = [e for e in BruteForceSuccess.examples() if e.fires][:1]
    with _syslog_receiver(tmp_path) as server:
        detection = Detection.open(tmp_path)
        alerts = detection.on_stored(example.events)
        detection.close()
        assert {a.rule_id for a in alerts if a.revision == 1} == {
            "auth.brute_force",
            "auth.brute_force_success",
        }
        # Only the High one goes to this channel.
        first, _ = server.recvfrom(65535)
        assert b"auth.brute_force_success" in first

        again = Detection.open(tmp_path)
        replayed = again.on_stored(example.events)
        again.close()
        assert replayed == []
        try:
            extra = server.recvfrom(65535)[0]
        except TimeoutError:
            extra = b""
        assert extra == b"", "a replayed batch was notified again"


def _failures(user: str, count: int, first_offset: int) -> list[Event]:
    """``count`` bad-password sign-ins of ``user``, one a minute, each a distinct stored event."""
    return [
        signin(m, user, result="FAILED_BAD_PASSWORD", offset=first_offset + m) for m in range(count)
    ]


def _rules_app(detection: Detection, data_dir: Path) -> TestClient:
    # As `hubsight run` wires it: the API shares the running engine's database handle.
    app = FastAPI()
    app.state.detect_db = detection.engine.db
    app.state.data_dir = data_dir
    app.include_router(router)
    return TestClient(app)


def _fired(alerts: list[Alert], rule_id: str) -> list[str | None]:
    return [a.user for a in alerts if a.rule_id == rule_id and a.revision == 1]


def test_rule_changes_apply_to_the_running_engine_and_keep_its_windows(tmp_path: Path) -> None:
    (tmp_path / "detect.toml").write_text("learning_days = 0\n")
    detection = Detection.open(tmp_path, refresh_s=0)
    api = _rules_app(detection, tmp_path)
    burst = _failures("adele@contoso.com", 9, 0)
    try:
        assert _fired(detection.on_stored(burst[:6]), "auth.brute_force") == []
        # Lowered while six failures sit in the window: two more make eight.
        tuned = api.put("/api/v1/rules/auth.brute_force/thresholds", json={"count": 8})
        assert tuned.status_code == 200
        fired = detection.on_stored(burst[6:8])
        assert _fired(fired, "auth.brute_force") == ["adele@contoso.com"]

        # Switched off from another process, as `hubsight rules disable` does.
        done = subprocess.run(
            [sys.executable, "-m", "hubsight", "--data-dir", str(tmp_path), "rules", "disable",
             "auth.brute_force"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "applies to a running hubsight within seconds" in done.stdout
        assert (
            _fired(detection.on_stored(_failures("bob@contoso.com", 10, 100)), "auth.brute_force")
            == []
        )

        # Excepted users stay quiet once it is on again; the others fire.
        api.put("/api/v1/rules/auth.brute_force/enabled", json={"enabled": True})
        api.put("/api/v1/rules/auth.brute_force/exceptions", json={"users": ["carol@contoso.com"]})
        events = _failures("carol@contoso.com", 10, 200) + _failures("dan@contoso.com", 10, 300)
        assert _fired(detection.on_stored(events), "auth.brute_force") == ["dan@contoso.com"]
    finally:
        detection.close()


def test_settings_are_looked_at_once_per_interval(tmp_path: Path) -> None:
    detection = Detection.open(tmp_path, refresh_s=3600)
    try:
        SettingsStore(detection.engine.db).set_enabled("auth.brute_force", False)
        assert detection.refresh() is False
        assert "auth.brute_force" in {r.meta.id for r in detection.engine.rules}
        assert detection.refresh(force=True) is True
        assert "auth.brute_force" not in {r.meta.id for r in detection.engine.rules}
        assert detection.refresh(force=True) is False
    finally:
        detection.close()


def test_a_broken_detect_toml_keeps_the_running_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    detection = Detection.open(tmp_path, refresh_s=0)
    try:
        rules = len(detection.engine.rules)
        (tmp_path / "detect.toml").write_text("lateness_hours = 'soon'\n")
        assert detection.refresh() is False
        assert len(detection.engine.rules) == rules
        assert "cannot be used; the running ones stay" in caplog.text
        (tmp_path / "detect.toml").write_text('[rules."auth.brute_force"]\nenabled = false\n')
        os.utime(tmp_path / "detect.toml", ns=(0, time.time_ns() + 10**9))
        assert detection.refresh() is True
        assert len(detection.engine.rules) == rules - 1
    finally:
        detection.close()


def test_notification_targets_apply_without_a_restart(tmp_path: Path) -> None:
    (tmp_path / "detect.toml").write_text("learning_days = 0\n")
    detection = Detection.open(tmp_path, refresh_s=0)
    api = _rules_app(detection, tmp_path)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
            server.bind(("127.0.0.1", 0))
            server.settimeout(5)
            port = server.getsockname()[1]
            body = {"kind": "syslog", "name": "siem", "host": "127.0.0.1", "port": port,
                    "severities": ["Medium"]}  # fmt: skip
            assert api.post("/api/v1/notify/targets", json=body).status_code == 201
            detection.on_stored(_failures("erin@contoso.com", 10, 0))
            assert b"auth.brute_force" in server.recvfrom(65535)[0]
            assert api.delete("/api/v1/notify/targets/siem").status_code == 204
            fired = detection.on_stored(_failures("finn@contoso.com", 10, 100))
            assert _fired(fired, "auth.brute_force") == ["finn@contoso.com"]
            server.settimeout(0.3)
            with pytest.raises(TimeoutError):
                server.recvfrom(65535)
        assert detection.notifier.channels == []
    finally:
        detection.close()


def test_alerts_a_failed_save_left_are_notified_when_closing(tmp_path: Path) -> None:
    (example,) = [e for e in BruteForceSuccess.examples() if e.fires][:1]
    with _syslog_receiver(tmp_path) as server:
        detection = Detection.open(tmp_path)
        # Another process holds the database's write lock: the batch's save fails (after
        # SQLite's 5 s wait), and it was the last batch before the shutdown.
        holder = sqlite3.connect(tmp_path / "detect.sqlite3", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError, match="database is locked"):
                detection.on_stored(example.events)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with pytest.raises(TimeoutError):
            server.recvfrom(65535)
        detection.close()
        sent, _ = server.recvfrom(65535)
        assert b"auth.brute_force_success" in sent
        with pytest.raises(TimeoutError):
            server.recvfrom(65535)
    db = DetectDB.in_dir(tmp_path)
    try:
        rules = {row["rule_id"] for row in db.rows("SELECT rule_id FROM alerts")}
    finally:
        db.close()
    assert rules == {"auth.brute_force", "auth.brute_force_success"}


def test_a_rule_detect_toml_names_that_no_rule_has_is_said_at_start_and_on_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A typo meant to switch a rule off left it running, with nothing said.
    (tmp_path / "detect.toml").write_text(
        '[rules."auth.brute_forse"]\nenabled = false\n'
        '[rules."auth.password_spray"]\nenabled = false\n'
        '[rules."custom.bad-passwords"]\nenabled = false\n'
        '[[custom]]\nid = "bad-passwords"\ntitle = "Bad password"\nkind = "pattern"\n'
        "query = 'where(result = \"FAILED_BAD_PASSWORD\")'\n"
    )
    with caplog.at_level("WARNING", logger="hubsight.detect.runtime"):
        detection = Detection.open(tmp_path, refresh_s=0)
    try:
        said = [r.getMessage() for r in caplog.records if "which no rule has" in r.getMessage()]
        # Named with its nearest rule; the rule switched off by its right name, and a custom
        # alert's (a rule only once a store runs it), are not.
        assert said == [
            "detect.toml sets rule 'auth.brute_forse', which no rule has, so its settings do "
            "nothing (did you mean 'auth.brute_force'? `hubsight rules list` lists the rules)"
        ]
        assert "auth.brute_force" in {r.meta.id for r in detection.engine.rules}
        caplog.clear()
        (tmp_path / "detect.toml").write_text('[rules."zzz"]\nenabled = false\n')
        os.utime(tmp_path / "detect.toml", ns=(0, time.time_ns() + 10**9))
        with caplog.at_level("WARNING", logger="hubsight.detect.runtime"):
            assert detection.refresh() is True
        assert "sets rule 'zzz', which no rule has, so its settings do nothing (`hubsight" in (
            caplog.text
        )
    finally:
        detection.close()
