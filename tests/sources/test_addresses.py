"""Broker addresses are checked once, in the source's model: the CLI, the API and the console's
form (which sends to the API) refuse the same bad host or port with the same words."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.errors import ConfigError
from hubsight.sources.config import KafkaProfile, make_source
from hubsight.store.catalog import Catalog

from tests.support import connection_string

HOST = "contoso-logs.servicebus.windows.net"

# (bootstrap, words the error must hold: the bad value, what is wrong with it)
BAD_BOOTSTRAPS = [
    ("host:99999", ["'host:99999'", "port 99999 is not between 1 and 65535"]),
    ("host:0", ["'host:0'", "port 0 is not between 1 and 65535"]),
    ("host:65536", ["'host:65536'", "port 65536"]),
    (":9092", ["':9092'", "has no host name"]),
    ("k1:9092,:9093", ["':9093'", "has no host name"]),
    ("host:abc", ["'host:abc'", "the port 'abc' is not a number"]),
    ("host:", ["'host:'", "the port is missing"]),
    ("host", ["'host'", "has no port"]),
    ("...:9092", ["'...'", "is not a host name"]),
    ("-kafka:9092", ["'-kafka'", "is not a host name"]),
    ("host:９０９２", ["is not a number"]),
    (" , ", ["bootstrap is empty"]),
]
FIX = "e.g. kafka-1:9092"


def _kafka(name: str, bootstrap: str) -> dict[str, object]:
    return {"name": name, "profile": {"kind": "kafka", "bootstrap": bootstrap}}


@pytest.mark.parametrize(("bootstrap", "words"), BAD_BOOTSTRAPS, ids=[b for b, _ in BAD_BOOTSTRAPS])
def test_a_bad_bootstrap_is_refused_naming_the_value_and_the_fix(
    bootstrap: str, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        make_source(_kafka("relay", bootstrap))
    for word in [*words, FIX]:
        assert word in refused.value.message


@pytest.mark.parametrize(
    "bootstrap", ["k1:9092", "k1:9092, k2:65535", "10.0.0.7:1", "kafka-1.corp.example.:9093"]
)
def test_good_bootstraps_are_kept(bootstrap: str) -> None:
    kept = make_source(_kafka("relay", bootstrap)).profile
    assert isinstance(kept, KafkaProfile)
    assert kept.bootstrap == bootstrap.replace(" ", "")


def test_an_event_hubs_server_port_out_of_range_is_refused() -> None:
    profile = {"kind": "eventhubs", "server": f"{HOST}:99999", "connection_string": "x"}
    with pytest.raises(ConfigError, match="port 99999 is not between 1 and 65535"):
        make_source({"name": "azure", "profile": profile})


def test_a_connection_string_in_the_address_field_is_not_echoed() -> None:
    secret = "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=s3cr3t"
    for profile in (
        {"kind": "eventhubs", "server": secret, "connection_string": connection_string()},
        {"kind": "kafka", "bootstrap": f"user:s3cr3t@{HOST}:9092"},
    ):
        with pytest.raises(ConfigError, match="is not an address") as refused:
            make_source({"name": "x", "profile": profile})
        assert "s3cr3t" not in refused.value.message


def test_the_cli_refuses_a_bad_bootstrap_with_exit_2(data_dir: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "source", "add", "relay", "--kafka",
         "--bootstrap", "host:99999"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "error: profile.bootstrap: bootstrap server 'host:99999': port 99999" in result.stderr
    assert FIX in result.stderr
    assert Catalog(data_dir).all() == []


def test_a_source_stored_before_the_check_still_loads(data_dir: Path) -> None:
    # Sources saved while such addresses were let in stay listable, editable and removable.
    catalog = Catalog(data_dir)
    catalog.add(make_source(_kafka("relay", "k1:9092")))
    with sqlite3.connect(catalog.path) as db:
        (plain,) = db.execute("SELECT config FROM sources WHERE name = 'relay'").fetchone()
        config = json.loads(plain)
        config["profile"]["bootstrap"] = "k1:99999"
        db.execute("UPDATE sources SET config = ? WHERE name = 'relay'", (json.dumps(config),))
    (loaded,) = Catalog(data_dir).all()
    assert isinstance(loaded.profile, KafkaProfile)
    assert loaded.profile.bootstrap == "k1:99999"
