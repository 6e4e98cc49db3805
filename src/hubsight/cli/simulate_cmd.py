"""``hubsight simulate``: generate a realistic Azure tenant's Event Hub traffic with attacks."""

from __future__ import annotations

import json
import os
import re
import sys
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import click

from hubsight.errors import ConfigError
from hubsight.simulate import SCENARIOS, Simulation, SimulationConfig
from hubsight.simulate.engine import TruthSink
from hubsight.simulate.sinks import ExportSink, KafkaSink, LinesSink, Sink

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h`` or ``7d`` as a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(
            f"cannot read the duration {text!r}", hint="write it like 90s, 15m, 2h or 7d"
        )
    return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])


def _parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        start = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"cannot read the start time {text!r}", hint="write it like 2026-11-20T00:00:00Z"
        ) from exc
    if start.tzinfo is None:
        raise ConfigError(f"the start time {text!r} has no time zone", hint="add Z for UTC")
    return start


@click.command("simulate")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    metavar="NAME",
    help=f"Attack scenario to plant (repeatable, or 'all'): {', '.join(SCENARIOS)}.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for a repeatable run.")
@click.option(
    "--rate",
    type=float,
    default=20.0,
    show_default=True,
    help="Records per second, averaged over a week (the daily rhythm varies it).",
)
@click.option("--duration", default=None, help="How much time to simulate (90s, 15m, 2h, 7d).")
@click.option("--count", type=int, default=None, help="Stop after about this many records.")
@click.option(
    "--start",
    default=None,
    help="Simulate from this time (ISO 8601 with zone) as fast as possible; default: live now.",
)
@click.option("--users", type=int, default=200, show_default=True, help="People in the tenant.")
@click.option("--domain", default="contoso.com", show_default=True, help="The tenant's domain.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Write one message body per line to FILE ('-' or nothing: stdout).",
)
@click.option(
    "--export",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write records into DIR laid out like a storage-account export (for hubsight import).",
)
@click.option("--kafka", metavar="HOST:PORT", default=None, help="Produce to this Kafka broker.")
@click.option("--topic", default=None, help="Kafka topic (with --kafka).")
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the ground truth (one JSON object per planted scenario) to FILE.",
)
@click.option(
    "--list-scenarios", is_flag=True, help="Print each scenario's name and what it does, and exit."
)
@click.option(
    "--scenario-interval",
    default="5m",
    show_default=True,
    help="Without --duration or --count: plant the next scenario this often.",
)
def simulate(
    scenarios: tuple[str, ...],
    seed: int,
    rate: float,
    duration: str | None,
    count: int | None,
    start: str | None,
    users: int,
    domain: str,
    out: Path | None,
    export: Path | None,
    kafka: str | None,
    topic: str | None,
    truth: Path | None,
    list_scenarios: bool,
    scenario_interval: str,
) -> None:
    """Generate Event Hub messages ({"records": [...]}, at most 1 MB) of a simulated tenant."""
    if list_scenarios:
        for name, plant in SCENARIOS.items():
            summary = (plant.__doc__ or "").strip().splitlines()[0]
            click.echo(f"{name:28} {summary}")
        return
    if duration is not None and count is not None:
        raise ConfigError("--duration and --count cannot be combined", hint="choose one")
    if sum(x is not None for x in (out, export, kafka)) > 1:
        raise ConfigError(
            "--out, --export and --kafka cannot be combined", hint="choose one destination"
        )
    if kafka is not None and not topic:
        raise ConfigError("--kafka needs --topic", hint="add --topic NAME")
    names = tuple(n for s in scenarios for n in (SCENARIOS if s == "all" else (s,)))
    config = SimulationConfig(
        seed=seed,
        rate=rate,
        users=users,
        domain=domain,
        scenarios=names,
        start=_parse_start(start),
        duration=parse_duration(duration) if duration is not None else None,
        count=count,
        scenario_interval=parse_duration(scenario_interval),
    )
    if config.start is not None and duration is None and count is None:
        raise ConfigError("--start needs --duration or --count", hint="for example --duration 1d")
    with ExitStack() as stack:
        truth_stream: IO[str] | None = None
        if truth is not None:
            truth_stream = stack.enter_context(truth.open("w", encoding="utf-8"))
        sink: Sink
        if kafka is not None:
            sink = KafkaSink(kafka, topic or "")
        elif export is not None:
            sink = ExportSink(export)
        elif out is None or str(out) == "-":
            sink = LinesSink(sys.stdout.buffer)
        else:
            sink = LinesSink(stack.enter_context(out.open("wb")))
        _run(Simulation(config, truth=_truth_writer(truth_stream)), sink)


def _truth_writer(stream: IO[str] | None) -> TruthSink | None:
    if stream is None:
        return None

    def write(entry: dict[str, Any]) -> None:
        stream.write(json.dumps(entry) + "\n")
        stream.flush()

    return write


def _run(simulation: Simulation, sink: Sink) -> None:
    messages = records = 0
    try:
        for message in simulation.messages():
            sink.send(message)
            messages += 1
            records += message.records
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader (``| head``) went away: stop quietly, as other command-line tools do, and
        # point stdout at /dev/null so that the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    sink.close()
    click.echo(f"sent {messages} messages, {records} records", err=True)
