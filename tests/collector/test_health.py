"""The failures users meet end in state ``error`` with the matching hint, and heal when fixed.

All sources run in one service: a broken source never stops the others or the process.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from hubsight.devbroker import LocalBroker, free_port
from hubsight.service import Service
from hubsight.sources.config import make_source

from tests.support import (
    PLANTED_PASSWORD,
    assert_no_secret,
    connection_string,
    create_topic,
    kafka_source,
    produce,
    serving,
    state_of,
    stored_count,
    wait_until,
)

pytestmark = pytest.mark.integration


def _body(n: int = 3) -> bytes:
    return json.dumps({"records": [{"category": "AuditLogs", "i": i} for i in range(n)]}).encode()


def _problem(service: Service, name: str, problem: str) -> bool:
    snapshot = state_of(service, name)
    return snapshot.get("state") == "error" and snapshot.get("problem") == problem


def test_each_failure_has_its_hint_and_the_service_recovers(
    broker: LocalBroker, auth_broker: LocalBroker, data_dir: Path, tmp_path: Path
) -> None:
    closed_port = free_port()
    missing_topic = f"missing-{uuid.uuid4().hex[:8]}"
    sources = [
        kafka_source("closed-port", f"localhost:{closed_port}", "late-topic"),
        make_source(
            {
                "name": "eventhubs-closed",
                "profile": {
                    "kind": "eventhubs",
                    "server": f"localhost:{free_port()}",
                    "connection_string": connection_string("localhost"),
                },
                "topics": ["insights-operational-logs"],
                "tuning": {"reconnect_backoff_max_ms": 1_000},
            }
        ),
        kafka_source(
            "unknown-user",
            auth_broker.bootstrap,
            "any",
            profile={"sasl": "scram-sha-256", "username": "nobody", "password": PLANTED_PASSWORD},
        ),
        kafka_source(
            "plain-vs-scram",
            auth_broker.bootstrap,
            "any",
            profile={"sasl": "plain", "username": "u", "password": PLANTED_PASSWORD},
        ),
        kafka_source("missing-topic", broker.bootstrap, missing_topic),
    ]
    with serving(data_dir, *sources) as service:
        wait_until(lambda: _problem(service, "closed-port", "unreachable"), 30, "closed port")
        wait_until(lambda: _problem(service, "eventhubs-closed", "unreachable"), 30, "EH port")
        wait_until(lambda: _problem(service, "unknown-user", "authentication"), 30, "SCRAM user")
        wait_until(lambda: _problem(service, "plain-vs-scram", "sasl_mechanism"), 30, "PLAIN")
        wait_until(lambda: _problem(service, "missing-topic", "topic_not_found"), 30, "topic")

        assert "Connection refused" in state_of(service, "closed-port")["last_error"]
        assert f"broker at localhost:{closed_port}" in state_of(service, "closed-port")["hint"]
        eventhubs = state_of(service, "eventhubs-closed")
        assert "outbound TCP connection" in eventhubs["hint"]
        assert "9093" in eventhubs["hint"]
        assert "unknown-user" in state_of(service, "unknown-user")["last_error"]
        assert "password" in state_of(service, "unknown-user")["hint"]
        plain = state_of(service, "plain-vs-scram")
        assert "mechanism handshake failed" in plain["last_error"]
        assert "SASL mechanism" in plain["hint"]
        missing = state_of(service, "missing-topic")
        assert missing_topic in missing["last_error"]
        assert "verify the Event Hub (topic) name" in missing["hint"]
        for name in [s.name for s in sources]:
            assert_no_secret(json.dumps(state_of(service, name)))

        # Fix each problem while the service keeps running.
        with LocalBroker(port=closed_port, log_path=tmp_path / "late.log") as late:
            create_topic(late.bootstrap, 2, "late-topic")
            produce(late.bootstrap, "late-topic", [_body()] * 5)
            wait_until(lambda: stored_count(service, "closed-port") == 15, 60, "late broker data")
            # Health is published after the store write it reports: wait for it, briefly.
            wait_until(
                lambda: state_of(service, "closed-port")["state"] == "running",
                10,
                "closed-port running",
            )

        create_topic(broker.bootstrap, 2, missing_topic)
        produce(broker.bootstrap, missing_topic, [_body()] * 4)
        wait_until(lambda: stored_count(service, "missing-topic") == 12, 60, "created topic data")
        # Health is published after the store write it reports: wait for it, briefly.
        wait_until(
            lambda: state_of(service, "missing-topic")["state"] == "running",
            10,
            "missing-topic running",
        )

        # A corrected credential (here: the source moved to a broker it may read) is picked up
        # by the running service without a restart.
        fixed_topic = create_topic(broker.bootstrap, 1)
        produce(broker.bootstrap, fixed_topic, [_body()] * 2)
        service.catalog.replace(kafka_source("unknown-user", broker.bootstrap, fixed_topic))
        wait_until(lambda: stored_count(service, "unknown-user") == 6, 60, "fixed source data")
        # Health is published after the store write it reports: wait for it, briefly.
        wait_until(
            lambda: state_of(service, "unknown-user")["state"] == "running",
            10,
            "unknown-user running",
        )


def test_connected_without_data_says_so(broker: LocalBroker, topic: str, data_dir: Path) -> None:
    with serving(data_dir, kafka_source("quiet", broker.bootstrap, topic)) as service:
        wait_until(
            lambda: state_of(service, "quiet").get("problem") == "no_data", 30, "no-data hint"
        )
        snapshot = state_of(service, "quiet")
        assert snapshot["state"] == "waiting for data"
        assert "nothing arrives" in snapshot["hint"]
        produce(broker.bootstrap, topic, [_body(1)])
        wait_until(lambda: state_of(service, "quiet")["state"] == "running", 30, "running")
        assert state_of(service, "quiet")["problem"] is None
