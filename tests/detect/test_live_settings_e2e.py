"""A real ``hubsight run`` changes behaviour when settings change under it, without a restart.

Azure sign-in records go through the broker, the collector, the store and the detection of a
``hubsight run`` process; rules are tuned through its API (over its Unix socket) and switched off
with the ``hubsight rules`` command in another process, and a notification target is added and
removed through the API. Every phase carries a positive control in the same message (one batch),
so "no alert" means the rule ran with the new settings, not that the batch was not processed yet.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.cli.local_api import LocalApi
from hubsight.devbroker import LocalBroker
from hubsight.service import SOCKET_FILE
from hubsight.store.catalog import Catalog

from tests.support import kafka_source, produce, wait_until

pytestmark = pytest.mark.integration

_TEMPLATE: dict[str, Any] = json.loads(
    (
        Path(__file__).parents[1]
        / "data/azure/SignInLogs/bad-password-properties-as-string-ip-port.json"
    ).read_text()
)
# Settings are looked at once a second by the running engine.
_APPLIES_WITHIN_S = 1.2


def _failure(user: str, ip: str, when: datetime) -> dict[str, Any]:
    """A SignInLogs record of a bad password for ``user`` from ``ip``."""
    properties = json.loads(_TEMPLATE["properties"])
    properties.update(
        id=str(uuid.uuid4()),
        userPrincipalName=user,
        createdDateTime=when.isoformat(),
        ipAddress=ip,
    )
    stamp = when.isoformat().replace("+00:00", "Z")
    return _TEMPLATE | {
        "time": stamp,
        "callerIpAddress": ip,
        "properties": json.dumps(properties),
    }


def _burst(user: str, ip: str, count: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(minutes=5)
    return [_failure(user, ip, start + timedelta(seconds=10 * n)) for n in range(count)]


@pytest.fixture
def running(data_dir: Path, broker: LocalBroker, topic: str) -> Iterator[LocalApi]:
    """``hubsight run`` collecting ``topic``, and its API over the owner's socket."""
    (data_dir / "detect.toml").write_text("learning_days = 0\n")
    Catalog(data_dir).add(kafka_source("azure", broker.bootstrap, topic))
    log = (data_dir / "run.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), "run", "--no-web"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = LocalApi(data_dir, timeout_s=10)
    try:
        wait_until(lambda: _listening(data_dir / SOCKET_FILE), 60, "hubsight run's API")
        wait_until(lambda: _source_runs(api), 60, "hubsight run's source to run")
        yield api
    finally:
        api.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def _listening(path: Path) -> bool:
    # The socket file exists a moment before the API listens on it.
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _source_runs(api: LocalApi) -> bool:
    health = api.call("GET", "/api/v1/event-sources/azure/health")
    return health["state"] in ("running", "waiting for data")


def _alerts(api: LocalApi, rule_id: str) -> set[str | None]:
    found = api.call("GET", f"/api/v1/alerts?rule_id={rule_id}&limit=1000")
    return {alert["user"] for alert in found}


def _send(broker: LocalBroker, topic: str, *records: list[dict[str, Any]]) -> None:
    body = json.dumps({"records": [r for group in records for r in group]}).encode()
    produce(broker.bootstrap, topic, [body])


def test_api_and_cli_changes_reach_the_running_engine(
    running: LocalApi, broker: LocalBroker, topic: str, data_dir: Path
) -> None:
    api = running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as siem:
        siem.bind(("127.0.0.1", 0))
        siem.settimeout(10)
        target = {"kind": "syslog", "name": "siem", "host": "127.0.0.1",
                  "port": siem.getsockname()[1], "severities": ["Medium"]}  # fmt: skip
        api.call("POST", "/api/v1/notify/targets", target)
        time.sleep(_APPLIES_WITHIN_S)

        # 1. Defaults: ten failures in ten minutes fire, and the new target hears of it.
        _send(broker, topic, _burst("ann@contoso.com", "198.51.100.1", 10))
        wait_until(lambda: "ann@contoso.com" in _alerts(api, "auth.brute_force"), 60, "ann's alert")
        assert b"ann@contoso.com" in siem.recvfrom(65535)[0]

        # 2. Tuned through the API to twenty, the target removed: ten stay quiet, twenty fire.
        api.call("PUT", "/api/v1/rules/auth.brute_force/thresholds", {"count": 20})
        api.call("DELETE", "/api/v1/notify/targets/siem")
        time.sleep(_APPLIES_WITHIN_S)
        _send(
            broker,
            topic,
            _burst("bea@contoso.com", "198.51.100.2", 10),
            _burst("cyd@contoso.com", "198.51.100.3", 20),
        )
        wait_until(lambda: "cyd@contoso.com" in _alerts(api, "auth.brute_force"), 60, "cyd's alert")
        assert "bea@contoso.com" not in _alerts(api, "auth.brute_force")
        siem.settimeout(0.5)
        with pytest.raises(TimeoutError):
            siem.recvfrom(65535)

    # 3. Switched off by the CLI in another process: twenty-five stay quiet while a password
    # spray in the same message fires.
    done = subprocess.run(
        [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), "rules", "disable",
         "auth.brute_force"],
        capture_output=True, text=True, timeout=60, check=False, env=os.environ,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    time.sleep(_APPLIES_WITHIN_S)
    spray = [_burst(f"user{n}@contoso.com", "198.51.100.9", 1)[0] for n in range(6)]
    _send(broker, topic, _burst("dot@contoso.com", "198.51.100.4", 25), spray)
    wait_until(lambda: _alerts(api, "auth.password_spray") != set(), 60, "the spray alert")
    assert "dot@contoso.com" not in _alerts(api, "auth.brute_force")
    log = (data_dir / "run.log").read_text()
    assert log.count("detection settings applied") >= 3, log
