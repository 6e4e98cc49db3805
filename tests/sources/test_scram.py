"""A Kafka-profile source that logs in with SASL SCRAM-SHA-256 or SCRAM-SHA-512.

The SCRAM exchange runs between librdkafka (configured by hubsight) and the SCRAM server of
``scramp`` in ``scramfront``; the messages behind the login come from a real tansu broker. tansu's
own ``--authentication`` cannot be used for the successful path: the storage engine of its build
keeps no SCRAM users (see ``scramfront``). Its refusals (PLAIN offered to a SCRAM-only broker, an
unknown SCRAM user) are tested against tansu itself with the ``auth_broker`` fixture.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from hubsight.probe import probe_source
from hubsight.sources.config import SourceConfig
from hubsight.sources.diagnose import Problem, hint_for
from hubsight.sources.kafka_probe import STEP_NAMES

from tests.scramfront import ScramFront
from tests.support import (
    PLANTED_PASSWORD,
    kafka_source,
    serving,
    state_of,
    stored_count,
    wait_until,
)
from tests.tlsbroker import create_topic_as, produce_as

pytestmark = pytest.mark.integration

MESSAGES = 30
PARTITIONS = 2
MECHANISMS = ["scram-sha-256", "scram-sha-512"]


def _user(front: ScramFront, sasl: str) -> str:
    return next(user for mechanism, user in front.users if mechanism == sasl.upper())


def _source(
    front: ScramFront, topic: str, sasl: str, role: str = "reader", **profile: Any
) -> SourceConfig:
    credentials = {"username": _user(front, sasl), "password": PLANTED_PASSWORD, **profile}
    name = f"{role}-{sasl}-{topic}"
    # A group per source (a role per test): each test reads the shared topic from its start.
    return kafka_source(
        name, front.bootstrap, topic, profile={"sasl": sasl, **credentials}, consumer_group=name
    )


@pytest.fixture(scope="module")
def scram_topic(scram_broker: ScramFront) -> str:
    """A topic behind the SCRAM login holding MESSAGES one-record envelopes."""
    topic = f"scram-{uuid.uuid4().hex[:8]}"
    writer = _source(scram_broker, topic, "scram-sha-512", "writer")
    create_topic_as(writer, topic, PARTITIONS)
    bodies = [
        json.dumps({"records": [{"category": "Administrative", "correlationId": str(n)}]}).encode()
        for n in range(MESSAGES)
    ]
    produce_as(writer, topic, bodies)
    return topic


@pytest.mark.parametrize("sasl", MECHANISMS)
def test_scram_source_is_stored_end_to_end(
    scram_broker: ScramFront, scram_topic: str, sasl: str, data_dir: Path
) -> None:
    source = _source(scram_broker, scram_topic, sasl)
    with serving(data_dir, source) as service:
        wait_until(
            lambda: (
                stored_count(service, source.name) >= MESSAGES
                and state_of(service, source.name)["state"] == "running"
            ),
            timeout=40,
            what=f"{MESSAGES} events read after a {sasl} login and state running",
        )
        rows = service.store.select(
            "SELECT count() AS n, uniqExact(source_partition, source_offset) AS messages "
            "FROM events WHERE log_name = {n:String}",
            {"n": source.name},
        )
        health = state_of(service, source.name)
    assert rows == [{"n": MESSAGES, "messages": MESSAGES}]
    assert health["state"] == "running"
    assert health["last_error"] is None


def test_wrong_password_is_an_authentication_error_until_fixed(
    scram_broker: ScramFront, scram_topic: str, data_dir: Path
) -> None:
    wrong = _source(
        scram_broker, scram_topic, "scram-sha-256", "fixed", password="not-the-password"
    )
    with serving(data_dir, wrong) as service:
        wait_until(
            lambda: state_of(service, wrong.name).get("problem") == Problem.AUTHENTICATION.value,
            timeout=30,
            what="the authentication problem in the source's health",
        )
        refused = state_of(service, wrong.name)
        assert stored_count(service, wrong.name) == 0
        # The user fixes the password; the running service picks the change up by itself.
        service.catalog.replace(_source(scram_broker, scram_topic, "scram-sha-256", "fixed"))
        wait_until(
            lambda: (
                stored_count(service, wrong.name) >= MESSAGES
                and state_of(service, wrong.name)["state"] == "running"
            ),
            timeout=40,
            what="the events and state running once the password is right",
        )
        recovered = state_of(service, wrong.name)
    assert refused["state"] == "error"
    assert "SASL authentication error" in refused["last_error"]
    assert refused["hint"] == hint_for(
        Problem.AUTHENTICATION, eventhubs=False, endpoint=scram_broker.bootstrap
    )
    assert recovered["state"] == "running"


@pytest.mark.parametrize("sasl", MECHANISMS)
def test_probe_authenticates_with_scram(
    scram_broker: ScramFront, scram_topic: str, sasl: str
) -> None:
    steps = probe_source(_source(scram_broker, scram_topic, sasl), timeout=10)
    assert [(s.name, s.status) for s in steps] == [
        ("dns", "ok"),
        ("tcp", "ok"),
        ("tls", "skipped"),
        ("sasl", "ok"),
        ("topic", "ok"),
        ("first_message", "ok"),
    ]
    assert steps[STEP_NAMES.index("sasl")].detail.startswith("authenticated;")


def test_probe_stops_at_sasl_with_a_wrong_password(
    scram_broker: ScramFront, scram_topic: str
) -> None:
    wrong = _source(scram_broker, scram_topic, "scram-sha-512", password="not-the-password")
    steps = probe_source(wrong, timeout=3)
    statuses = {s.name: s.status for s in steps}
    assert statuses["sasl"] == "failed"
    assert statuses["topic"] == statuses["first_message"] == "skipped"
    sasl = steps[STEP_NAMES.index("sasl")]
    assert sasl.hint == hint_for(
        Problem.AUTHENTICATION, eventhubs=False, endpoint=scram_broker.bootstrap
    )
