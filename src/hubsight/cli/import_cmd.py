"""``hubsight import``: backfill archived Azure records from files into the event store.

A file holds message bodies or records one per line (the storage-account export's ``PT1H.json``
files hold one record per line), or one JSON document, pretty-printed or not. Each line is a
message at an offset equal to its line number (0-based); a file that is one document is one
message at offset 0. A file's key, the messages' topic, is its path inside a storage-account
export (from the ``insights-logs-<category>`` or ``insights-activity-logs`` container, or without
one from ``resourceId=``, on), whatever folder was named on the command line; other files are
keyed by their path relative to the directory named (their name, for a file named directly).
Importing the same file again, alone or within any folder above it, skips every line already
stored: imports are idempotent and resume where they stopped.

Files compressed with gzip (``.gz``, ``.json.gz``; recognised by their first bytes) are read
as their content. Files of the same name in different places (``a/PT1H.json``, ``b/PT1H.json``)
are each keyed by their path relative to the parent they have in common.

Directories are searched recursively. Files of a storage-account export
(``insights-logs-<category>/resourceId=.../y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json``) are imported
in the order of the hour they hold, the others by path.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
import msgspec

from hubsight.cli.options import store_settings
from hubsight.errors import ConfigError, HubsightError, StoreError
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import MessageParser
from hubsight.parsing.registry import default_registry
from hubsight.sources.base import Message
from hubsight.store.backends import open_store
from hubsight.store.base import EventStore

# Events per store write: large enough for ClickHouse to like the parts, small enough that an
# interrupted import loses little work (it resumes after the last stored batch anyway).
_BATCH_EVENTS = 5_000
_EXPORT_HOUR = re.compile(r"y=(\d{4})/m=(\d{1,2})/d=(\d{1,2})/h=(\d{1,2})")
# Where a storage-account export's own layout begins: its container, else the resource path.
_EXPORT_CONTAINER = re.compile(r"insights-logs-.+|insights-activity-logs")
_EXPORT_RESOURCE = "resourceid="
_json_check = msgspec.json.Decoder(msgspec.Raw)
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class ImportFile:
    """A file to import and the topic its messages are stored under."""

    path: Path
    topic: str
    size: int
    # The topic is the file's path inside a storage-account export.
    export: bool = False


def _export_key(path: Path) -> str | None:
    """The file's path inside a storage-account export, or None if it is not in one."""
    parts = path.resolve().parts
    for start, part in enumerate(parts):
        if _EXPORT_CONTAINER.fullmatch(part):
            return "/".join(parts[start:])
    for start, part in enumerate(parts):
        if part.lower().startswith(_EXPORT_RESOURCE):
            return "/".join(parts[start:])
    return None


def _import_file(path: Path, fallback: str) -> ImportFile:
    key = _export_key(path)
    return ImportFile(path, key or fallback, path.stat().st_size, export=key is not None)


def _export_hour(relative: str) -> datetime | None:
    match = _EXPORT_HOUR.search(relative)
    if match is None:
        return None
    year, month, day, hour = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def collect_files(paths: tuple[Path, ...]) -> list[ImportFile]:
    """Every file named or under a named directory, export files in time order; topics unique."""
    found: list[ImportFile] = []
    for path in paths:
        if path.is_dir():
            inside = []
            for child in path.rglob("*"):
                relative = child.relative_to(path)
                if child.is_file() and not any(p.startswith(".") for p in relative.parts):
                    inside.append((relative.as_posix(), child))
            never = datetime.max.replace(tzinfo=UTC)
            inside.sort(key=lambda item: (_export_hour(item[0]) or never, item[0]))
            found += [_import_file(child, rel) for rel, child in inside]
        elif path.is_file():
            found.append(_import_file(path, path.name))
        else:
            raise ConfigError(f"{path} is neither a file nor a directory", hint="check the path")
    return _unique_topics(found)


def _unique_topics(found: list[ImportFile]) -> list[ImportFile]:
    """Files whose topics clash keyed by their path relative to their common parent instead.

    Only the clashing ones change, so that a file imported before keeps its topic (and is
    skipped, not stored again); a file named twice is imported once. Export files of the same
    key are copies of one blob of one resource's hour: only the largest is kept.
    """
    unique = list({f.path.resolve(): f for f in found}.values())
    largest: dict[str, ImportFile] = {}
    for f in unique:
        if f.export and (f.topic not in largest or f.size > largest[f.topic].size):
            largest[f.topic] = f
    unique = [f for f in unique if not f.export or largest[f.topic] is f]
    topics = Counter(f.topic for f in unique)
    clashing = [f for f in unique if topics[f.topic] > 1]
    if not clashing:
        return unique
    parent = Path(os.path.commonpath([f.path.resolve().parent for f in clashing]))
    keyed = {f.path: f.path.resolve().relative_to(parent).as_posix() for f in clashing}
    return [ImportFile(f.path, keyed.get(f.path, f.topic), f.size, f.export) for f in unique]


@contextmanager
def _open(path: Path) -> Iterator[tuple[io.BufferedIOBase, io.BufferedIOBase]]:
    """The file's content, decompressed when it is gzip (whatever its name says), and the file
    itself, whose position is how much of it has been read."""
    with path.open("rb") as raw:
        if raw.read(2) != _GZIP_MAGIC:
            raw.seek(0)
            yield raw, raw
            return
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as content:
            yield content, raw


def read_messages(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(offset, message body, bytes read) of each message of a file; blank lines are skipped.

    Bytes read are the file's own (compressed, for gzip): they drive the progress bar.
    """
    try:
        with _open(path) as (handle, raw):
            first = handle.readline()
            while first and not first.strip():
                first = handle.readline()
            try:
                _json_check.decode(first.removeprefix(_BOM))
                per_line = True
            except msgspec.DecodeError:
                per_line = False
            except RecursionError:
                per_line = True  # a line too deep to decode: the parser keeps it as unparsed
            handle.seek(0)
            if not per_line:
                whole = handle.read()
                yield 0, whole.removeprefix(_BOM), raw.tell()
                return
            done = 0
            for number, line in enumerate(handle):
                position = raw.tell()
                if line.strip():
                    # Files saved by Windows tools may start with a byte-order mark.
                    body = line.removeprefix(_BOM) if number == 0 else line
                    yield number, body, position - done
                    done = position
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise HubsightError(
            f"cannot read {path}: the gzip data is damaged or cut short ({exc})",
            hint="check the file with `gzip -t`; lines read before the damage are stored",
        ) from exc
    except OSError as exc:
        raise HubsightError(
            f"cannot read {path}: {exc.strerror}", hint="check the file's permissions"
        ) from exc


@dataclass(slots=True)
class _Totals:
    files: int = 0
    messages: int = 0
    skipped_messages: int = 0
    events: int = 0
    unparsed: int = 0

    def summary(self, by_category: Counter[str]) -> dict[str, object]:
        return {
            "files": self.files,
            "messages": self.messages,
            "skipped_messages": self.skipped_messages,
            "events": self.events,
            "unparsed": self.unparsed,
            "by_category": dict(sorted(by_category.items())),
        }


@click.command("import")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    metavar="FILE|DIR ...",
)
@click.option("--log-name", required=True, help="Log name (event source) to store events under.")
@click.option("--default-domain", default=None, help="Domain for user names that have none.")
@click.option(
    "--keep-unparsed/--drop-unparsed",
    default=True,
    show_default=True,
    help="Store records of categories nobody parses as Unparsed Data, or only count them.",
)
@click.option(
    "--geoip",
    default=None,
    help="MaxMind database file or folder (default: $HUBSIGHT_GEOIP, else <data dir>/geoip).",
)
@click.pass_obj
def import_command(
    data_dir: Path,
    paths: tuple[Path, ...],
    log_name: str,
    default_domain: str | None,
    keep_unparsed: bool,
    geoip: str | None,
) -> None:
    """Backfill Azure records from FILE|DIR ... into the store, skipping what is stored."""
    files = collect_files(paths)
    parser = MessageParser(
        log_name=log_name,
        registry=default_registry(data_dir, geoip),
        default_domain=default_domain,
        keep_unparsed=keep_unparsed,
    )
    store = open_store(store_settings(data_dir))
    try:
        totals, by_category = _import(store, parser, files)
    finally:
        store.close()
    click.echo(json.dumps(totals.summary(by_category)))


def _messages_keeping(
    path: Path, store: EventStore, pending: list[Event], totals: _Totals
) -> Iterator[tuple[int, bytes, int]]:
    """The file's messages; when it cannot be read to its end, what was read before is stored
    before the error (which names the file) goes on."""
    try:
        yield from read_messages(path)
    except HubsightError:
        if pending:
            _write(store, pending, totals)
            pending.clear()
        raise


def _import(
    store: EventStore, parser: MessageParser, files: list[ImportFile]
) -> tuple[_Totals, Counter[str]]:
    stored = store.stored_offsets(parser.log_name)
    totals = _Totals()
    by_category: Counter[str] = Counter()
    pending: list[Event] = []
    received = datetime.now(UTC)
    with click.progressbar(
        length=sum(f.size for f in files),
        label="importing",
        file=sys.stderr,
        show_pos=False,
    ) as progress:
        for item in files:
            totals.files += 1
            done = stored.get((item.topic, 0), -1)
            for offset, body, size in _messages_keeping(item.path, store, pending, totals):
                progress.update(size)
                if offset <= done:
                    totals.skipped_messages += 1
                    continue
                message = Message(
                    topic=item.topic, partition=0, offset=offset, value=body, received_time=received
                )
                events = parser.parse(message)
                totals.messages += 1
                for event in events:
                    by_category[event.category or "(none)"] += 1
                    if event.log_set is LogSet.UNPARSED_DATA:
                        totals.unparsed += 1
                pending.extend(events)
                # Only whole messages are written together: a resumed import skips by message.
                if len(pending) >= _BATCH_EVENTS:
                    _write(store, pending, totals)
                    pending.clear()
        if pending:
            _write(store, pending, totals)
    return totals, by_category


def _write(store: EventStore, events: list[Event], totals: _Totals) -> None:
    """Store one batch; a failure says how far the import got, and how to go on."""
    try:
        store.write(events)
    except StoreError as exc:
        raise StoreError(
            f"{exc.message}; {totals.events} events of {totals.files} file(s) were stored "
            "before this batch",
            hint=f"{exc.hint}; then run the same import again: it skips what is stored and "
            "goes on from there",
        ) from exc
    totals.events += len(events)
