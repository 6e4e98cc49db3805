"""``hubsight source ...`` and ``hubsight status``: the command-line contract of the collector."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from hubsight.cli.main import cli
from hubsight.cli.source_cmd import add
from hubsight.devbroker import LocalBroker, free_port
from hubsight.health import SourceHealth
from hubsight.store.catalog import Catalog

from tests.support import (
    PLANTED_KEY,
    PLANTED_PASSWORD,
    assert_no_secret,
    connection_string,
    connection_string_of,
    produce,
)

HOST = "contoso-logs.servicebus.windows.net"


def _invoke(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> Result:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), *args], env=env, input=stdin, catch_exceptions=False
    )
    assert_no_secret(result.stdout)
    assert_no_secret(result.stderr)
    return result


def test_add_event_hubs_source_from_env_and_never_show_the_key(data_dir: Path) -> None:
    env = {"EH_CONN": connection_string()}
    result = _invoke(
        data_dir,
        "source", "add", "azure-prod", "--server", HOST, "--topic", "insights-operational-logs",
        "--keep-unparsed", "--default-domain", "contoso.com", "--connection-string-env", "EH_CONN",
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    listed = _invoke(data_dir, "source", "list")
    assert "azure-prod" in listed.stdout
    assert HOST in listed.stdout
    shown = json.loads(_invoke(data_dir, "source", "show", "azure-prod").stdout)
    assert shown["profile"]["connection_string"] == "(set)"
    assert shown["keep_unparsed"] is True
    assert shown["default_domain"] == "contoso.com"
    assert connection_string_of(Catalog(data_dir).get("azure-prod")) == connection_string()


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (("--server", HOST), "--connection-string-env VAR or --connection-string-file FILE"),
        (("--server", HOST, "--key-name", "hubsight-listen"), "--key-env VAR or --key-file FILE"),
        (("--kafka", "--bootstrap", "k:9092", "--sasl", "plain", "--username", "u"),
         "--password-env VAR or --password-file FILE"),
    ],
)  # fmt: skip
def test_no_secret_and_no_terminal_is_a_usage_error_naming_the_options(
    data_dir: Path, args: tuple[str, ...], fix: str
) -> None:
    """A script with nothing on stdin got click's bare 'Aborted!' (exit 1) after a warning that
    the input may be echoed; the README's "or a file / variable" is the fix to name."""
    result = _invoke(data_dir, "source", "add", "quiet", *args, stdin="")
    assert result.exit_code == 2, result.output
    assert "Aborted" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: no ")
    assert "no terminal to ask for it on" in lines[0]
    assert lines[1] == f"hint: give {fix}, or pipe it on standard input"
    assert Catalog(data_dir).all() == []


def test_add_from_prompt_file_and_policy_key(data_dir: Path, tmp_path: Path) -> None:
    prompted = _invoke(
        data_dir, "source", "add", "p1", "--server", HOST, stdin=connection_string() + "\n"
    )
    assert prompted.exit_code == 0, prompted.stderr
    secret_file = tmp_path / "conn.txt"
    secret_file.write_text(connection_string() + "\n")
    from_file = _invoke(
        data_dir,
        "source",
        "add",
        "p2",
        "--server",
        HOST,
        "--connection-string-file",
        str(secret_file),
    )
    assert from_file.exit_code == 0, from_file.stderr
    by_key = _invoke(
        data_dir, "source", "add", "p3", "--server", HOST, "--key-name", "listen", "--key-env", "K",
        env={"K": PLANTED_KEY},
    )  # fmt: skip
    assert by_key.exit_code == 0, by_key.stderr
    built = connection_string_of(Catalog(data_dir).get("p3"))
    assert (
        built == f"Endpoint=sb://{HOST}/;SharedAccessKeyName=listen;SharedAccessKey={PLANTED_KEY}"
    )
    # The server as the portal shows it: the key's connection string named the namespace "sb".
    as_uri = _invoke(
        data_dir, "source", "add", "p4", "--server", f"sb://{HOST.upper()}:9093/",
        "--key-name", "listen", "--key-env", "K", env={"K": PLANTED_KEY},
    )  # fmt: skip
    assert as_uri.exit_code == 0, as_uri.stderr
    built = connection_string_of(Catalog(data_dir).get("p4"))
    assert built.startswith(f"Endpoint=sb://{HOST}/;SharedAccessKeyName=listen;")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--server", HOST, "--connection-string-env", "EMPTY"], {}, "EMPTY is not set"),
        (
            ["--server", "other.servicebus.windows.net", "--connection-string-env", "C"],
            {"C": connection_string()},
            "the connection string is for contoso-logs",
        ),
        (
            ["--server", HOST, "--topic", "hub-b", "--connection-string-env", "C"],
            {"C": connection_string(entity="hub-a")},
            "EntityPath",
        ),
        (
            ["--server", HOST, "--connection-string-env", "C"],
            {"C": f"Endpoint=sb://{HOST}/;SharedAccessSignature=sr=a&sig={PLANTED_KEY}"},
            "SAS token",
        ),
        (["--kafka"], {}, "--bootstrap is required"),
        (["--topic", "x"], {}, "--server is required"),
    ],
)
def test_bad_input_is_a_usage_error_with_a_hint(
    data_dir: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = _invoke(data_dir, "source", "add", "bad", *args, env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert Catalog(data_dir).all() == []


def test_kafka_source_with_scram_password_from_env(data_dir: Path) -> None:
    result = _invoke(
        data_dir, "source", "add", "relay", "--kafka", "--bootstrap", "kafka1:9093",
        "--topic", "azure", "--sasl", "scram-sha-512", "--username", "hubsight",
        "--password-env", "PW",
        env={"PW": PLANTED_PASSWORD},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    profile = json.loads(_invoke(data_dir, "source", "show", "relay").stdout)["profile"]
    assert profile == {
        "kind": "kafka",
        "bootstrap": "kafka1:9093",
        "sasl": "scram-sha-512",
        "username": "hubsight",
        "password": "(set)",
        "tls": False,
        "tls_ca": None,
    }


def test_enable_disable_remove_and_missing_names(data_dir: Path) -> None:
    _invoke(data_dir, "source", "add", "k", "--kafka", "--bootstrap", "h:9092", "--topic", "t")
    assert _invoke(data_dir, "source", "disable", "k").exit_code == 0
    assert Catalog(data_dir).get("k").enabled is False
    assert _invoke(data_dir, "source", "enable", "k").exit_code == 0
    assert Catalog(data_dir).get("k").enabled is True
    assert _invoke(data_dir, "source", "remove", "k").exit_code == 0
    missing = _invoke(data_dir, "source", "remove", "k")
    assert missing.exit_code == 1
    assert "no event source named 'k'" in missing.stderr
    assert "hubsight source list" in missing.stderr


@pytest.mark.integration
def test_source_test_walks_every_step(broker: LocalBroker, topic: str, data_dir: Path) -> None:
    produce(
        broker.bootstrap,
        topic,
        [b'{"records":[{"category":"SignInLogs"},{"category":"AuditLogs"}]}'],
    )
    _invoke(
        data_dir,
        "source",
        "add",
        "ok",
        "--kafka",
        "--bootstrap",
        broker.bootstrap,
        "--topic",
        topic,
    )
    result = _invoke(data_dir, "source", "test", "ok", "--json")
    assert result.exit_code == 0, result.stdout
    steps = {s["step"]: s for s in json.loads(result.stdout)["steps"]}
    assert [s["status"] for s in steps.values()] == ["ok", "ok", "skipped", "ok", "ok", "ok"]
    assert "2 records, categories AuditLogs, SignInLogs" in steps["first_message"]["detail"]

    _invoke(
        data_dir,
        "source",
        "add",
        "nosuch",
        "--kafka",
        "--bootstrap",
        broker.bootstrap,
        "--topic",
        "nope",
    )
    missing = json.loads(_invoke(data_dir, "source", "test", "nosuch", "--json").stdout)
    topic_step = next(s for s in missing["steps"] if s["step"] == "topic")
    assert topic_step["status"] == "failed"
    assert topic in topic_step["detail"]
    assert "verify the Event Hub (topic) name" in topic_step["hint"]

    closed = f"localhost:{free_port()}"
    _invoke(data_dir, "source", "add", "closed", "--kafka", "--bootstrap", closed, "--topic", "t")
    text = _invoke(data_dir, "source", "test", "closed")
    assert text.exit_code == 1
    assert "FAILED   tcp" in text.stdout
    assert "SKIPPED  sasl" in text.stdout
    assert f"check that the broker at {closed} is running" in text.stdout


def test_status_when_nothing_runs(data_dir: Path) -> None:
    _invoke(data_dir, "source", "add", "k", "--kafka", "--bootstrap", "h:9092", "--topic", "t")
    _invoke(data_dir, "source", "add", "off", "--kafka", "--bootstrap", "h:9092", "--disabled")
    report = json.loads(_invoke(data_dir, "status", "--json").stdout)
    assert report["running"] is False
    states = {s["name"]: (s["state"], s["events_stored"]) for s in report["sources"]}
    assert states == {"k": ("stopped", 0), "off": ("disabled", 0)}
    assert report["geoip"] == []
    table = _invoke(data_dir, "status").stdout
    assert "hubsight run is not running" in table
    # The script fills ./data unless told which data directory: it is named.
    assert (
        f"GeoIP: no database; to locate IP addresses run scripts/fetch-geoip.sh {data_dir} "
        in table
    )


def test_status_lists_a_sources_notices(data_dir: Path) -> None:
    _invoke(data_dir, "source", "add", "k", "--kafka", "--bootstrap", "h:9092", "--topic", "t")
    health = SourceHealth("k")
    health.notice(
        "offsets of partition 2 of t went back from 50,112 to 0: the topic was re-created"
    )
    Catalog(data_dir).save_health([health.snapshot()])
    report = json.loads(_invoke(data_dir, "status", "--json").stdout)
    (notice,) = report["sources"][0]["notices"]
    assert notice["message"].startswith("offsets of partition 2 of t went back")
    text = _invoke(data_dir, "status").stdout
    assert f"k: {notice['time']}: offsets of partition 2 of t went back from 50,112 to 0" in text


def test_every_option_of_source_add_says_what_it_is_for() -> None:
    """`--start-from`, `--sasl`, `--password-file` and `--consumer-group` showed in `--help`
    with no word of what they do (the README's synopsis names them)."""
    bare = [p.opts[0] for p in add.params if isinstance(p, click.Option) and not p.help]
    assert bare == []
