"""``hubsight detect --replay``: backtest the rules over files or stored events.

Prints one JSON object per alert that would have fired (``rule_id``, ``title``, ``severity``,
``user``, ``source_ip``, ``first_event_time``, ``last_event_time``, ``evidence`` and more); no
notification is sent and nothing is written to the data directory's alerts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import msgspec

from hubsight.detect.alerts import Alert
from hubsight.detect.base import TEN_YEARS_DAYS
from hubsight.detect.replay import events_from_files, events_from_store
from hubsight.detect.runtime import EngineRequest, open_engine
from hubsight.errors import ConfigError
from hubsight.parsing.event import Event
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry

_encode = msgspec.json.Encoder().encode


@click.command("detect")
@click.option("--replay", is_flag=True, help="Backtest over past events (required).")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of Azure records or Event Hub bodies (repeatable).",
)
@click.option("--from", "start", default=None, help="Stored events from (ISO 8601, UTC).")
@click.option("--to", "end", default=None, help="Stored events until (ISO 8601, UTC).")
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of Sigma rules to run with the built-in rules (default: <data dir>/rules).",
)
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
@click.option(
    "--learning-days",
    type=click.FloatRange(min=0, max=TEN_YEARS_DAYS),
    default=None,
    help="Silent learning period of baseline rules (default: detect.toml, else 7).",
)
@click.option("--log-name", default="replay", show_default=True, help="Log name of file events.")
@click.option("--geoip", default=None, help="MaxMind database file or folder for file input.")
# ``--input A B C`` (the contract's FILE ...): files after the first one arrive as arguments.
@click.argument(
    "more_inputs", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.pass_obj
def detect(
    data_dir: Path,
    replay: bool,
    inputs: tuple[Path, ...],
    start: str | None,
    end: str | None,
    rules_dir: Path | None,
    fmt: str,
    learning_days: float | None,
    log_name: str,
    geoip: str | None,
    more_inputs: tuple[Path, ...],
) -> None:
    """Run the enabled rules over past events and print what would have fired."""
    if more_inputs and not inputs:
        raise ConfigError(
            "files given without --input", hint="write `--input FILE ...` to replay files"
        )
    inputs = inputs + more_inputs
    if not replay:
        raise ConfigError(
            "live detection runs inside `hubsight run`",
            hint="use `hubsight detect --replay --input FILE` or `--from T --to T` to backtest",
        )
    if bool(inputs) == bool(start or end):
        raise ConfigError(
            "give either --input FILE ... or --from T --to T",
            hint="--input replays files of records; --from/--to replay stored events",
        )
    engine = open_engine(
        EngineRequest(
            data_dir=data_dir,
            persist=False,
            rules_dir=rules_dir,
            learning=None if learning_days is None else timedelta(days=learning_days),
        )
    )
    final: dict[str, Alert] = {}
    for batch in _batches(data_dir, inputs, start, end, log_name, geoip):
        for alert in engine.process(batch):
            final[alert.id] = alert
        for withdrawn in engine.withdrawn:
            final.pop(withdrawn, None)
    out = sys.stdout.buffer
    for alert in sorted(final.values(), key=lambda a: (a.first_event_time, a.rule_id, a.id)):
        # With the context, as `alerts show` prints it: a Sigma correlation's base rules.
        out.write(_encode({**alert.summary(), "context": alert.context}) + b"\n")
    out.flush()


def _batches(
    data_dir: Path,
    inputs: tuple[Path, ...],
    start: str | None,
    end: str | None,
    log_name: str,
    geoip: str | None,
) -> Iterator[list[Event]]:
    if inputs:
        parser = MessageParser(log_name=log_name, registry=default_registry(data_dir, geoip))
        yield from events_from_files(parser, list(inputs))
        return
    from hubsight.cli.options import store_settings
    from hubsight.store.backends import open_store

    store = open_store(store_settings(data_dir))
    try:
        yield from events_from_store(store, parse_time(start, "--from"), parse_time(end, "--to"))
    finally:
        store.close()


def parse_time(text: str | None, option: str) -> datetime:
    """An ISO 8601 time (UTC when it has no zone)."""
    if not text:
        raise ConfigError(f"{option} is missing", hint="give both --from and --to")
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time", hint="write it as 2026-03-01T00:00:00Z"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)
