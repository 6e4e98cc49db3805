"""A Kafka-profile source over TLS: stunnel with a throwaway CA in front of a real tansu broker.

The collector and ``hubsight source test`` verify the broker's certificate against the source's
CA file; with the right CA everything produced is stored, with another CA the source ends in
state ``error`` with the TLS hint and nothing is stored.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from hubsight.probe import probe_source
from hubsight.sources.config import SourceConfig
from hubsight.sources.diagnose import Problem, hint_for
from hubsight.sources.kafka_probe import STEP_NAMES

from tests.support import kafka_source, serving, state_of, stored_count, wait_until
from tests.tlsbroker import TlsTerminator, create_topic_as, produce_as

pytestmark = pytest.mark.integration

MESSAGES = 40
RECORDS_PER_MESSAGE = 3
PARTITIONS = 2


def _envelope(message: int) -> bytes:
    records = [
        {
            "time": "2026-11-27T04:00:00Z",
            "category": "Administrative",
            "operationName": "MICROSOFT.RESOURCES/DEPLOYMENTS/WRITE",
            "correlationId": f"m{message}-r{index}",
        }
        for index in range(RECORDS_PER_MESSAGE)
    ]
    return json.dumps({"records": records}).encode()


def _tls_source(tls_broker: TlsTerminator, topic: str, ca: Path) -> SourceConfig:
    name = f"tls-{ca.parent.name}-{topic}"
    # A group per source: each test reads the shared topic from its start.
    return kafka_source(
        name,
        tls_broker.bootstrap,
        topic,
        profile={"tls": True, "tls_ca": str(ca)},
        consumer_group=name,
    )


@pytest.fixture(scope="module")
def tls_topic(tls_broker: TlsTerminator, ca_file: Path) -> str:
    """A topic on the TLS broker holding MESSAGES Azure envelopes, written over TLS."""
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    writer = _tls_source(tls_broker, topic, ca_file)
    create_topic_as(writer, topic, PARTITIONS)
    produce_as(writer, topic, [_envelope(m) for m in range(MESSAGES)])
    return topic


def test_source_over_tls_is_stored_end_to_end(
    tls_broker: TlsTerminator, tls_topic: str, ca_file: Path, data_dir: Path
) -> None:
    source = _tls_source(tls_broker, tls_topic, ca_file)
    expected = MESSAGES * RECORDS_PER_MESSAGE
    with serving(data_dir, source) as service:
        wait_until(
            lambda: (
                stored_count(service, source.name) >= expected
                and state_of(service, source.name)["state"] == "running"
            ),
            timeout=40,
            what=f"{expected} events read through TLS and state running",
        )
        rows = service.store.select(
            "SELECT count() AS n, uniqExact(source_partition, source_offset) AS messages, "
            "uniqExact(category) AS categories, countIf(enqueued_time IS NULL) AS no_enqueued "
            "FROM events WHERE log_name = {n:String}",
            {"n": source.name},
        )
        health = state_of(service, source.name)
    assert rows == [{"n": expected, "messages": MESSAGES, "categories": 1, "no_enqueued": 0}]
    assert health["state"] == "running"
    assert health["last_error"] is None


def test_wrong_ca_ends_in_tls_error_with_its_hint(
    tls_broker: TlsTerminator, tls_topic: str, wrong_ca_file: Path, data_dir: Path
) -> None:
    source = _tls_source(tls_broker, tls_topic, wrong_ca_file)
    with serving(data_dir, source) as service:
        wait_until(
            lambda: state_of(service, source.name).get("problem") == Problem.TLS.value,
            timeout=30,
            what="the TLS problem in the source's health",
        )
        health = state_of(service, source.name)
        stored = stored_count(service, source.name)
    assert health["state"] == "error"
    assert "certificate verify failed" in health["last_error"]
    assert health["hint"] == hint_for(Problem.TLS, eventhubs=False, endpoint=tls_broker.bootstrap)
    assert "--tls-ca" in health["hint"]
    assert stored == 0


def test_probe_walks_every_step_over_tls(
    tls_broker: TlsTerminator, tls_topic: str, ca_file: Path
) -> None:
    steps = probe_source(_tls_source(tls_broker, tls_topic, ca_file), timeout=10)
    assert [(s.name, s.status) for s in steps] == [(name, "ok") for name in STEP_NAMES]
    tls = steps[STEP_NAMES.index("tls")]
    assert tls.detail.startswith("TLSv1.")
    assert "certificate verified" in tls.detail
    first = steps[STEP_NAMES.index("first_message")]
    assert f"{RECORDS_PER_MESSAGE} records, categories Administrative" in first.detail


def test_probe_stops_at_tls_with_a_wrong_ca(
    tls_broker: TlsTerminator, tls_topic: str, wrong_ca_file: Path
) -> None:
    steps = probe_source(_tls_source(tls_broker, tls_topic, wrong_ca_file), timeout=10)
    assert [(s.name, s.status) for s in steps] == [
        ("dns", "ok"),
        ("tcp", "ok"),
        ("tls", "failed"),
        ("sasl", "skipped"),
        ("topic", "skipped"),
        ("first_message", "skipped"),
    ]
    tls = steps[STEP_NAMES.index("tls")]
    assert "CERTIFICATE_VERIFY_FAILED" in tls.detail
    assert tls.hint == hint_for(Problem.TLS, eventhubs=False, endpoint=tls_broker.bootstrap)
