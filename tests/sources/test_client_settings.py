"""The librdkafka settings each source profile maps to.

Azure Event Hubs itself cannot be reached from the test machines, so the Event Hubs profile is
checked here, setting by setting, against what its Kafka endpoint requires (TCP 9093, SASL_SSL
with PLAIN, user ``$ConnectionString`` and the connection string as password, connections
refreshed before Azure drops them after 4 idle minutes, fetches that admit 1 MB messages).
librdkafka itself is asked to accept each mapping; everything else runs against a real broker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from hubsight.errors import ConfigError, SourceError
from hubsight.sources.base import SourceHooks
from hubsight.sources.config import SourceConfig, make_source
from hubsight.sources.diagnose import Problem, hint_for
from hubsight.sources.kafka import KafkaSource, client_settings

from tests.support import PLANTED_PASSWORD, connection_string

HOST = "contoso-logs.servicebus.windows.net"
ONE_MB = 1024 * 1024
AZURE_IDLE_DROP_MS = 4 * 60 * 1000
SASL_KEYS = {"sasl.mechanism", "sasl.username", "sasl.password"}


def _eventhubs(**overrides: Any) -> SourceConfig:
    profile = {"kind": "eventhubs", "server": HOST, "connection_string": connection_string()}
    return make_source({"name": "azure", "profile": profile, **overrides})


def _kafka(**profile: Any) -> SourceConfig:
    return make_source(
        {"name": "relay", "profile": {"kind": "kafka", "bootstrap": "k1:9092,k2:9092", **profile}}
    )


def _accepted_by_librdkafka(settings: dict[str, Any]) -> None:
    # Creating a consumer validates every key and their consistency; it connects only later.
    Consumer(settings).close()


def test_eventhubs_profile_reaches_the_kafka_endpoint_with_the_connection_string() -> None:
    settings = client_settings(_eventhubs())
    assert settings["bootstrap.servers"] == f"{HOST}:9093"
    assert settings["security.protocol"] == "SASL_SSL"
    assert settings["sasl.mechanism"] == "PLAIN"
    assert settings["sasl.username"] == "$ConnectionString"
    assert settings["sasl.password"] == connection_string()
    # Azure's certificate chains to a public root: the system CA store verifies it.
    assert "ssl.ca.location" not in settings


def test_eventhubs_server_written_as_an_endpoint_url_is_normalized() -> None:
    explicit = make_source(
        {
            "name": "azure",
            "profile": {
                "kind": "eventhubs",
                "server": f"sb://{HOST.upper()}:9093/",
                "connection_string": connection_string(),
            },
        }
    )
    assert client_settings(explicit)["bootstrap.servers"] == f"{HOST}:9093"


def test_eventhubs_connections_outlive_azure_idle_drop() -> None:
    settings = client_settings(_eventhubs())
    assert settings["socket.keepalive.enable"] is True
    assert settings["metadata.max.age.ms"] == 180_000
    # Azure closes a connection idle for 4 minutes; ours are refreshed and reaped before that.
    assert settings["connections.max.idle.ms"] < AZURE_IDLE_DROP_MS
    assert settings["topic.metadata.refresh.interval.ms"] < AZURE_IDLE_DROP_MS
    assert settings["heartbeat.interval.ms"] * 3 <= settings["session.timeout.ms"]


def test_eventhubs_fetches_admit_one_megabyte_messages() -> None:
    settings = client_settings(_eventhubs())
    assert settings["max.partition.fetch.bytes"] > ONE_MB
    assert settings["fetch.max.bytes"] >= settings["max.partition.fetch.bytes"]
    assert settings["receive.message.max.bytes"] >= settings["fetch.max.bytes"] + 512


def test_offsets_are_committed_only_by_the_collector() -> None:
    settings = client_settings(_eventhubs())
    assert settings["enable.auto.commit"] is False
    assert settings["enable.auto.offset.store"] is False
    assert settings["group.id"] == "hubsight"


@pytest.mark.parametrize("start_from", ["earliest", "latest"])
def test_start_position_comes_from_the_source(start_from: str) -> None:
    assert client_settings(_eventhubs(start_from=start_from))["auto.offset.reset"] == start_from


def test_start_position_defaults_to_earliest() -> None:
    assert client_settings(_eventhubs())["auto.offset.reset"] == "earliest"


def test_eventhubs_settings_are_accepted_by_librdkafka() -> None:
    _accepted_by_librdkafka(client_settings(_eventhubs()))


@pytest.mark.parametrize(
    ("profile", "protocol", "mechanism"),
    [
        ({}, "PLAINTEXT", None),
        ({"sasl": "plain"}, "SASL_PLAINTEXT", "PLAIN"),
        ({"sasl": "scram-sha-256"}, "SASL_PLAINTEXT", "SCRAM-SHA-256"),
        ({"sasl": "scram-sha-512", "tls": True}, "SASL_SSL", "SCRAM-SHA-512"),
        ({"tls": True}, "SSL", None),
    ],
    ids=["none", "plain", "scram-256", "scram-512-tls", "tls"],
)
def test_kafka_profile_maps_sasl_and_tls(
    profile: dict[str, Any], protocol: str, mechanism: str | None
) -> None:
    if "sasl" in profile:
        profile = {**profile, "username": "relay-reader", "password": PLANTED_PASSWORD}
    settings = client_settings(_kafka(**profile))
    assert settings["bootstrap.servers"] == "k1:9092,k2:9092"
    assert settings["security.protocol"] == protocol
    if mechanism is None:
        assert SASL_KEYS.isdisjoint(settings)
    else:
        assert settings["sasl.mechanism"] == mechanism
        assert settings["sasl.username"] == "relay-reader"
        assert settings["sasl.password"] == PLANTED_PASSWORD
    assert "ssl.ca.location" not in settings
    _accepted_by_librdkafka(settings)


def test_kafka_profile_verifies_brokers_with_the_given_ca(ca_file: Path) -> None:
    settings = client_settings(_kafka(tls=True, tls_ca=str(ca_file)))
    assert settings["security.protocol"] == "SSL"
    assert settings["ssl.ca.location"] == str(ca_file)
    _accepted_by_librdkafka(settings)


def test_kafka_profile_with_a_missing_ca_file_fails_with_the_tls_hint(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    source = _kafka(tls=True, tls_ca=str(missing))
    with pytest.raises(SourceError) as caught:
        KafkaSource(
            source,
            SourceHooks(
                on_error=lambda _d: None,
                on_assign=lambda _p: None,
                on_revoke=lambda _p: None,
                on_lag=lambda _l: None,
            ),
        )
    assert "ssl.ca.location" in caught.value.message
    assert caught.value.retriable is False
    assert caught.value.hint == hint_for(Problem.TLS, eventhubs=False, endpoint="k1:9092,k2:9092")


def test_kafka_sasl_needs_a_username_and_a_password() -> None:
    with pytest.raises(ConfigError, match="SASL scram-sha-256 needs a username and a password"):
        _kafka(sasl="scram-sha-256", username="relay-reader")
