"""``hubsight source add | list | show | test | enable | disable | remove``.

Secrets never come from a plain argument (it would show in ``ps``): a no-echo prompt, a file or
an environment variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from hubsight.cli.prompting import ask_secret
from hubsight.cli.trail import record_cli
from hubsight.errors import ConfigError
from hubsight.probe import probe_source
from hubsight.sources.config import DEFAULT_TOPIC, make_source, normalize_server
from hubsight.sources.eventhubs import NAMESPACE_SUFFIX, build_connection_string
from hubsight.store.audit import changes
from hubsight.store.catalog import Catalog


@click.group("source")
def source() -> None:
    """Manage event sources (Azure Event Hubs or your own Kafka)."""


def _secret(
    what: str, file: Path | None, env: str | None, *, prompt: bool = True, options: str = ""
) -> str | None:
    if file is not None:
        try:
            return file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the {what} file {file}: {exc.strerror}") from None
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(
                f"the environment variable {env} is not set or empty",
                hint=f"export {env} with the {what} first",
            )
        return value.strip()
    if not prompt:
        return None
    value = ask_secret(what, hint=f"give {options}, or pipe it on standard input")
    return value.strip()


@source.command("add")
@click.argument("name")
@click.option("--server", help=f"Event Hubs namespace host[:port] (<ns>{NAMESPACE_SUFFIX}).")
@click.option(
    "--topic", "topics", multiple=True, help=f"Topic (Event Hub); default {DEFAULT_TOPIC}."
)
@click.option(
    "--topic-pattern", help="Regex subscription instead of topics, e.g. ^insights-logs-.*"
)
@click.option(
    "--consumer-group",
    default="hubsight",
    show_default=True,
    help="Kafka consumer group: the broker keeps its read positions.",
)
@click.option("--keep-unparsed", is_flag=True, help="Store records no parser claims.")
@click.option("--default-domain", help="Domain for user names that have none.")
@click.option(
    "--start-from",
    type=click.Choice(["earliest", "latest"]),
    default="earliest",
    show_default=True,
    help="Where a consumer group with no position starts: the oldest message kept, or new ones.",
)
@click.option(
    "--connection-string-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the Event Hubs connection string.",
)
@click.option(
    "--connection-string-env", metavar="VAR", help="Variable holding the connection string."
)
@click.option(
    "--key-name", help="Shared Access Policy name, to build the connection string from a key."
)
@click.option(
    "--key-file", type=click.Path(dir_okay=False, path_type=Path), help="File with the key."
)
@click.option("--key-env", metavar="VAR", help="Variable holding the policy's key.")
@click.option("--kafka", "is_kafka", is_flag=True, help="Your own Kafka instead of Event Hubs.")
@click.option("--bootstrap", help="Kafka bootstrap servers host:port[,host:port].")
@click.option(
    "--sasl",
    type=click.Choice(["none", "plain", "scram-sha-256", "scram-sha-512"]),
    default="none",
    show_default=True,
    help="SASL mechanism of the Kafka brokers (with --username and a password).",
)
@click.option("--username", help="SASL user name (Kafka).")
@click.option("--password-env", metavar="VAR", help="Variable holding the SASL password.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the SASL password.",
)
@click.option("--tls", is_flag=True, help="Use TLS to the Kafka brokers.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="CA bundle for TLS.")
@click.option("--disabled", is_flag=True, help="Add the source without starting it.")
@click.pass_obj
def add(data_dir: Path, /, name: str, **options: Any) -> None:
    """Add an event source NAME (also its log name in search)."""
    topics = list(options["topics"]) or ([] if options["topic_pattern"] else [DEFAULT_TOPIC])
    data: dict[str, Any] = {
        "name": name,
        "topics": topics,
        "topic_pattern": options["topic_pattern"],
        "consumer_group": options["consumer_group"],
        "keep_unparsed": options["keep_unparsed"],
        "default_domain": options["default_domain"],
        "start_from": options["start_from"],
        "enabled": not options["disabled"],
    }
    if options["is_kafka"]:
        data["profile"] = _kafka_profile(options)
    else:
        data["profile"] = _eventhubs_profile(options)
    config = make_source(data)
    Catalog(data_dir).add(config)
    record_cli(data_dir, "source.create", name, changes=changes({}, config.public()))
    click.echo(f"added event source {name!r}")


def _eventhubs_profile(options: dict[str, Any]) -> dict[str, Any]:
    server = options["server"]
    if not server:
        raise ConfigError(
            "--server is required for an Event Hubs source",
            hint=f"give the namespace host, e.g. --server contoso-logs{NAMESPACE_SUFFIX}",
        )
    if options["key_name"]:
        key = _secret(
            "shared access key", options["key_file"], options["key_env"],
            options="--key-env VAR or --key-file FILE",
        )  # fmt: skip
        # As the source will hold it: "sb://ns.../" named the namespace "sb" here.
        host = normalize_server(server).split(":")[0]
        connection: str | None = build_connection_string(host, options["key_name"], key or "")
    else:
        connection = _secret(
            "connection string", options["connection_string_file"],
            options["connection_string_env"],
            options="--connection-string-env VAR or --connection-string-file FILE",
        )  # fmt: skip
    return {"kind": "eventhubs", "server": server, "connection_string": connection}


def _kafka_profile(options: dict[str, Any]) -> dict[str, Any]:
    if not options["bootstrap"]:
        raise ConfigError("--bootstrap is required with --kafka", hint="e.g. --bootstrap host:9092")
    profile: dict[str, Any] = {
        "kind": "kafka",
        "bootstrap": options["bootstrap"],
        "sasl": options["sasl"],
        "tls": bool(options["tls"] or options["tls_ca"]),
        "tls_ca": options["tls_ca"],
    }
    if options["sasl"] != "none":
        profile["username"] = options["username"]
        profile["password"] = _secret(
            "password", options["password_file"], options["password_env"],
            options="--password-env VAR or --password-file FILE",
        )  # fmt: skip
    return profile


@source.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def list_sources(data_dir: Path, as_json: bool) -> None:
    """List event sources (secrets are never shown)."""
    sources: list[dict[str, Any]] = [c.public() for c in Catalog(data_dir).all()]
    if as_json:
        click.echo(json.dumps(sources, indent=2))
        return
    if not sources:
        click.echo("no event sources; add one with `hubsight source add`")
        return
    rows = [
        (
            s["name"],
            s["profile"]["kind"],
            s["profile"].get("server") or s["profile"].get("bootstrap"),
            s["topic_pattern"] or ",".join(s["topics"]),
            "enabled" if s["enabled"] else "disabled",
        )
        for s in sources
    ]
    click.echo(format_table(("NAME", "KIND", "SERVER", "TOPICS", "ENABLED"), rows))


@source.command("show")
@click.argument("name")
@click.pass_obj
def show(data_dir: Path, name: str) -> None:
    """Show one source's settings as JSON (secrets appear as '(set)')."""
    click.echo(json.dumps(Catalog(data_dir).get(name).public(), indent=2))


@source.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds per step.")
@click.pass_obj
def test(data_dir: Path, name: str, as_json: bool, timeout: float) -> None:
    """Check the connection step by step: DNS, TCP, TLS, SASL, topic, first message."""
    steps = probe_source(Catalog(data_dir).get(name), timeout=timeout)
    ok = all(s.ok for s in steps)
    if as_json:
        click.echo(json.dumps({"name": name, "ok": ok, "steps": [s.as_dict() for s in steps]}))
    else:
        for step in steps:
            click.echo(f"{step.status.upper():8} {step.name:14} {step.detail}")
            if step.hint:
                click.echo(f"{'':8} {'':14} hint: {step.hint}")
    if not ok:
        raise SystemExit(1)


@source.command("enable")
@click.argument("name")
@click.pass_obj
def enable(data_dir: Path, name: str) -> None:
    """Start collecting from NAME."""
    _switch(data_dir, name, True)
    click.echo(f"enabled {name!r}")


@source.command("disable")
@click.argument("name")
@click.pass_obj
def disable(data_dir: Path, name: str) -> None:
    """Stop collecting from NAME (its events stay)."""
    _switch(data_dir, name, False)
    click.echo(f"disabled {name!r}")


@source.command("remove")
@click.argument("name")
@click.pass_obj
def remove(data_dir: Path, name: str) -> None:
    """Delete NAME's settings (its stored events stay searchable)."""
    catalog = Catalog(data_dir)
    before = catalog.get(name).public()
    catalog.remove(name)
    record_cli(data_dir, "source.delete", name, changes=changes(before, {}))
    click.echo(f"removed {name!r}")


def _switch(data_dir: Path, name: str, enabled: bool) -> None:
    catalog = Catalog(data_dir)
    was = catalog.get(name).enabled
    catalog.set_enabled(name, enabled)
    if was == enabled:
        return
    record_cli(data_dir, "source.update", name, changes={"enabled": [was, enabled]})


def format_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """Rows as aligned plain-text columns."""
    cells = [tuple("" if v is None else str(v) for v in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in cells
    )
