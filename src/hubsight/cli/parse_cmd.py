"""``hubsight parse``: normalize Azure records from files or stdin and print them as JSON lines.

Each file (or stdin) is read as message bodies: an Event Hub ``{"records": [...]}`` body, a bare
record, a JSON array, pretty-printed JSON, or one record or message per line. ``--stats`` prints
one JSON object of counts instead of the events.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import click
import msgspec

from hubsight.errors import ConfigError
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.sources.base import Message

# Where an event came from inside the collector: not part of the normalized output.
_POSITION_FIELDS = ("source_topic", "source_partition", "source_offset", "record_index")
_encode = msgspec.json.Encoder().encode
_validate = msgspec.json.Decoder(msgspec.Raw).decode


@click.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--log-name", default="parse", show_default=True, help="Log name of the events.")
@click.option("--default-domain", default=None, help="Domain for user names that have none.")
@click.option(
    "--keep-unparsed/--drop-unparsed",
    default=True,
    show_default=True,
    help="Print records of categories nobody parses as Unparsed Data, or only count them.",
)
@click.option("--stats", is_flag=True, help="Print one JSON object of counts instead of events.")
@click.option(
    "--geoip",
    default=None,
    help="MaxMind database file or folder (default: $HUBSIGHT_GEOIP, else <data dir>/geoip).",
)
@click.pass_obj
def parse_command(
    data_dir: Path,
    files: tuple[str, ...],
    log_name: str,
    default_domain: str | None,
    keep_unparsed: bool,
    stats: bool,
    geoip: str | None,
) -> None:
    """Normalize Azure records from FILE ... (or - for stdin) and print events as JSON lines."""
    parser = MessageParser(
        log_name=log_name,
        registry=default_registry(data_dir, geoip),
        default_domain=default_domain,
        keep_unparsed=keep_unparsed,
    )
    counts = _Stats()
    out = sys.stdout.buffer
    for name in files:
        for offset, body in enumerate(_bodies(name)):
            message = Message(
                topic=name, partition=0, offset=offset, value=body, received_time=datetime.now(UTC)
            )
            for event in parser.parse(message):
                if stats:
                    counts.add(event)
                else:
                    out.write(event_json(event) + b"\n")
    if stats:
        counts.dropped = parser.counters.dropped_unparsed
        counts.repairs = Counter(parser.counters.repairs)
        out.write(_encode(counts.summary()) + b"\n")
    out.flush()


def event_json(event: Event) -> bytes:
    """One event as the ``parse`` output's JSON object: normalized fields, absent ones omitted."""
    for name in _POSITION_FIELDS:
        setattr(event, name, None)
    encoded = _encode(event)
    # The output is valid JSON, so a raw line break in it (from a pretty-printed record kept
    # verbatim) is whitespace between tokens: a space keeps one event per line.
    return encoded.replace(b"\r", b" ").replace(b"\n", b" ")


def reason_kind(reason: str) -> str:
    """A parse error without its specifics (positions, values), for counting."""
    return reason.split(": ", 1)[0].split(" (", 1)[0]


class _Stats:
    def __init__(self) -> None:
        self.events = 0
        self.by_category: Counter[str] = Counter()
        self.by_log_set: Counter[str] = Counter()
        self.unparsed_by_reason: Counter[str] = Counter()
        self.repairs: Counter[str] = Counter()
        self.dropped = 0

    def add(self, event: Event) -> None:
        self.events += 1
        self.by_category[event.category or "(none)"] += 1
        self.by_log_set[event.log_set] += 1
        if event.log_set is LogSet.UNPARSED_DATA and event.parse_error:
            self.unparsed_by_reason[reason_kind(event.parse_error)] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "by_category": dict(sorted(self.by_category.items())),
            "by_log_set": dict(sorted(self.by_log_set.items())),
            "unparsed_by_reason": dict(sorted(self.unparsed_by_reason.items())),
            "repairs": dict(sorted(self.repairs.items())),
            "dropped_unparsed": self.dropped,
        }


def _bodies(name: str) -> Iterator[bytes]:
    """The message bodies in a file: one per line when its first line is a whole JSON value
    (records or messages one per line, read as they come, so a large file is never held whole),
    else the whole file (pretty-printed JSON, or text that needs repair)."""
    try:
        with _open(name) as stream:
            first = next((line for line in stream if line.strip()), b"")
            if not first:
                return
            try:
                _validate(first)
            except msgspec.DecodeError:
                yield first + stream.read()
                return
            except RecursionError:
                pass  # a line too deep to decode is still a line: the parser keeps it as unparsed
            yield first
            yield from (line for line in stream if line.strip())
    except OSError as exc:
        raise ConfigError(
            f"cannot read {name}: {exc.strerror or exc}",
            hint="give files of Azure records, or - to read standard input",
        ) from exc


def _open(name: str) -> AbstractContextManager[BinaryIO]:
    if name == "-":
        stdin: BinaryIO = sys.stdin.buffer
        return nullcontext(stdin)  # standard input stays open for whoever reads it next
    return Path(name).open("rb")
