"""Event Hubs connection strings: parsing and the precise errors users get."""

from __future__ import annotations

import pytest

from hubsight.errors import ConfigError, CredentialError
from hubsight.sources.config import make_source
from hubsight.sources.eventhubs import (
    ConnectionString,
    build_connection_string,
    check_against_source,
)

from tests.support import PLANTED_KEY, connection_string

HOST = "contoso-logs.servicebus.windows.net"


def test_parse_namespace_connection_string() -> None:
    parsed = ConnectionString.parse(connection_string())
    assert parsed == ConnectionString(HOST, "hubsight-listen", None)


def test_parse_keeps_entity_path_and_ignores_case_of_keys() -> None:
    text = f"endpoint=sb://{HOST.upper()}/;sharedaccesskeyname=p;sharedaccesskey=k;entitypath=hub1"
    assert ConnectionString.parse(text) == ConnectionString(HOST, "p", "hub1")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        (f"Endpoint=sb://{HOST}/;SharedAccessKeyName=p", "no SharedAccessKey"),
        (f"Endpoint=sb://{HOST}/;SharedAccessKey=k", "no SharedAccessKeyName"),
        ("SharedAccessKeyName=p;SharedAccessKey=k", "no Endpoint"),
        (f"Endpoint=https://{HOST}/;SharedAccessKeyName=p;SharedAccessKey=k", "sb://"),
        ("just some text", "without '='"),
        (
            f"Endpoint=sb://{HOST}/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y",
            "SAS token",
        ),
    ],
)
def test_parse_rejects_with_the_missing_part_named(text: str, needle: str) -> None:
    with pytest.raises(CredentialError) as caught:
        ConnectionString.parse(text)
    assert needle in caught.value.message
    assert "Connection string-primary key" in caught.value.hint


def test_errors_never_contain_the_key() -> None:
    with pytest.raises(CredentialError) as caught:
        ConnectionString.parse(
            f"Endpoint=ftp://x/;SharedAccessKeyName=p;SharedAccessKey={PLANTED_KEY}"
        )
    assert PLANTED_KEY not in str(caught.value) + caught.value.hint


def test_build_from_policy_and_key() -> None:
    text = build_connection_string(HOST, "listen", "abc=")
    assert text == f"Endpoint=sb://{HOST}/;SharedAccessKeyName=listen;SharedAccessKey=abc="
    assert ConnectionString.parse(text).key_name == "listen"
    with pytest.raises(CredentialError):
        build_connection_string(HOST, "listen", " ")


def test_server_must_match_endpoint() -> None:
    with pytest.raises(CredentialError, match=r"is for contoso-logs\.servicebus"):
        check_against_source(
            ConnectionString.parse(connection_string()), "other.servicebus.windows.net", []
        )


def test_entity_path_must_match_topics() -> None:
    parsed = ConnectionString.parse(connection_string(entity="insights-logs-signinlogs"))
    check_against_source(parsed, HOST, ["insights-logs-signinlogs"])
    with pytest.raises(CredentialError, match="EntityPath"):
        check_against_source(parsed, HOST, ["insights-operational-logs"])


def _eventhubs(**overrides: object) -> dict[str, object]:
    return {
        "name": "azure-prod",
        "profile": {"kind": "eventhubs", "server": HOST, "connection_string": connection_string()},
        **overrides,
    }


def test_source_defaults() -> None:
    source = make_source(_eventhubs())
    assert source.topics == ["insights-operational-logs"]
    assert source.consumer_group == "hubsight"
    assert source.profile.bootstrap == f"{HOST}:9093"
    assert source.subscription == ["insights-operational-logs"]
    assert source.enabled
    assert not source.keep_unparsed


def test_source_with_topic_pattern_subscribes_to_the_regex() -> None:
    source = make_source(_eventhubs(topics=[], topic_pattern="insights-logs-.*"))
    assert source.subscription == ["^insights-logs-.*"]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"name": "bad/name"}, "name must start"),
        ({"topics": [], "topic_pattern": None}, "at least one topic"),
        ({"topics": ["^x"]}, "plain names"),
        ({"topic_pattern": "(unclosed"}, "not a valid regex"),
        ({"surprise": 1}, "Extra inputs"),
        ({"consumer_group": 5}, "consumer_group"),
    ],
)
def test_source_validation_names_the_problem(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_source(_eventhubs(**overrides))
    assert needle in caught.value.message
    assert PLANTED_KEY not in caught.value.message


def test_secret_is_not_in_repr_or_public_view() -> None:
    source = make_source(_eventhubs())
    assert PLANTED_KEY not in repr(source)
    assert source.public()["profile"]["connection_string"] == "(set)"
    assert PLANTED_KEY not in str(source.public())


def test_kafka_profile_needs_credentials_for_sasl() -> None:
    with pytest.raises(ConfigError, match="needs a username and a password"):
        make_source(
            {"name": "k", "profile": {"kind": "kafka", "bootstrap": "h:9092", "sasl": "plain"}}
        )
    with pytest.raises(ConfigError, match="host:port"):
        make_source({"name": "k", "profile": {"kind": "kafka", "bootstrap": "h"}})
