"""Parts of the event store that ClickHouse set aside as damaged, and what they held.

When ClickHouse opens a table it checks each part's files against the part's checksums; a part
that does not match (a column file cut short by a power cut, or by a merge that met a full
disk) is moved to ``detached/broken-on-start_<part>`` and its rows silently leave every query.
This module finds such parts and reads, from the part's own files, how many events they held
and, for the events table, which days (from the part's primary index, which stays readable
when a column file is cut short).
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hubsight.errors import StoreError
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

# Why ClickHouse moved a part to ``detached/``: these reasons mean its rows left the table.
# ('ignored' parts are covered by a part in use; a part detached on purpose has no reason.)
_DAMAGED = ("broken-on-start", "broken", "unexpected", "noquorum")
# What status, the log and the console say about damaged parts.
DOCTOR_HINT = "`hubsight doctor` checks the data directory and says how to recover them"

_PARTS = (  # the reasons are this module's constants
    "SELECT table, name, reason, path "  # noqa: S608
    "FROM system.detached_parts WHERE database = currentDatabase() "
    f"AND reason IN ({', '.join(repr(r) for r in _DAMAGED)}) ORDER BY table, name"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DamagedPart:
    """One part ClickHouse set aside: where it is and what it held."""

    table: str
    name: str
    reason: str
    path: str
    # Rows the part held; None when its files cannot be read from here (a ClickHouse server's
    # disk).
    events: int | None
    # The days of its events as the part's index tells them (the first and last row of every
    # 8,192): exact for a part of one log set of one source; None when unknown.
    first_day: date | None
    last_day: date | None

    def summary(self) -> str:
        """One line: which part, how many events, which days."""
        count = "an unknown number of" if self.events is None else f"{self.events:,}"
        noun = "row" if self.table != EVENTS_TABLE else "event"
        text = f"{count} {noun}{'' if self.events == 1 else 's'}"
        if self.first_day is not None and self.last_day is not None:
            days = str(self.first_day)
            if self.last_day != self.first_day:
                days += f" to {self.last_day}"
            text += f" of {days}"
        return f"{text} set aside as damaged ({self.reason}): {self.path}"

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready copy, as ``status --json`` and the API show it."""
        return {
            "table": self.table,
            "name": self.name,
            "reason": self.reason,
            "path": self.path,
            "events": self.events,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DamagedPart:
        """The part ``as_json`` wrote."""
        return cls(
            table=data["table"],
            name=data["name"],
            reason=data["reason"],
            path=data["path"],
            events=data["events"],
            first_day=date.fromisoformat(data["first_day"]) if data["first_day"] else None,
            last_day=date.fromisoformat(data["last_day"]) if data["last_day"] else None,
        )


def damaged_parts(store: EventStore) -> list[DamagedPart]:
    """Every part of the store's tables that ClickHouse set aside as damaged."""
    found = []
    for row in store.select(_PARTS):
        path = Path(row["path"])
        days = _days(path) if row["table"] == EVENTS_TABLE else None
        found.append(
            DamagedPart(
                table=row["table"],
                name=row["name"],
                reason=row["reason"],
                path=str(path),
                events=_count(path),
                first_day=days[0] if days else None,
                last_day=days[1] if days else None,
            )
        )
    return found


def reattach(store: EventStore, part: DamagedPart) -> None:
    """Give ``part`` back to its table if its files are whole; ``StoreError`` saying why not."""
    path = Path(part.path)
    _local(path)
    # ATTACH PART takes a part's own name: the reason prefix goes for the attempt.
    plain = path.with_name(part.name.removeprefix(f"{part.reason}_"))
    if plain.exists():
        raise StoreError(f"{plain} exists already: move it away and try again")
    os.rename(path, plain)
    try:
        store.execute(f"ALTER TABLE `{part.table}` ATTACH PART {{n:String}}", {"n": plain.name})
    except StoreError:
        # ClickHouse leaves a part it refused where it was: it keeps its name and reason.
        if plain.exists():
            os.rename(plain, path)
        raise


def set_aside(store: EventStore, table: str, part: str) -> None:
    """Take the active ``part`` out of ``table`` as ClickHouse does a part it finds broken: into
    ``detached/broken_<part>``, where ``damaged_parts`` lists it."""
    where = "WHERE database = currentDatabase() AND table = {t:String} AND name = {p:String}"
    params = {"t": table, "p": part}
    (active,) = store.select(f"SELECT path FROM system.parts {where} AND active", params)  # noqa: S608
    _local(Path(active["path"]))
    store.execute(f"ALTER TABLE `{table}` DETACH PART {{p:String}}", {"p": part})
    (row,) = store.select(f"SELECT path FROM system.detached_parts {where}", params)  # noqa: S608
    path = Path(row["path"])
    os.rename(path, path.with_name(f"broken_{part}"))


def _local(path: Path) -> None:
    """Parts are renamed here: a ClickHouse server's are on its own disk."""
    if not path.is_dir():
        raise StoreError(
            f"{path} is not on this machine",
            hint="rename the part's directory on the ClickHouse server, then run ALTER TABLE "
            "... ATTACH PART there",
        )


def _count(path: Path) -> int | None:
    try:
        return int((path / "count.txt").read_text().strip())
    except (OSError, ValueError):
        return None


def _days(path: Path) -> tuple[date, date] | None:
    """The first and last day in the part's primary index (log set, log name, event time)."""
    try:
        if (path / "primary.cidx").exists():
            index = b"".join(_blocks((path / "primary.cidx").read_bytes()))
        else:
            index = (path / "primary.idx").read_bytes()
        times = list(_index_times(index))
    except (OSError, ValueError, zstd.ZstdError):
        return None
    if not times:
        return None
    return _day(min(times)), _day(max(times))


# ClickHouse's compressed file: blocks of a 16-byte checksum, a method byte, the compressed size
# (with the 9-byte header) and the uncompressed size. Primary indexes are ZSTD by default.
_HEADER = struct.Struct("<16sBII")
_NONE, _ZSTD = 0x02, 0x90


def _blocks(data: bytes) -> Iterator[bytes]:
    at = 0
    while at < len(data):
        if at + _HEADER.size > len(data):
            raise ValueError("a compressed block is cut short")
        _checksum, method, compressed, size = _HEADER.unpack_from(data, at)
        payload = data[at + _HEADER.size : at + 16 + compressed]
        if method == _ZSTD:
            block = zstd.decompress(payload)
        elif method == _NONE:
            block = payload
        else:
            raise ValueError(f"compression method {method:#x} is not read here")
        if len(block) != size:
            raise ValueError("a compressed block is cut short")
        yield block
        at += 16 + compressed


def _index_times(index: bytes) -> Iterator[int]:
    """Event times (ms) of the index's marks: two strings, then a 64-bit time, per mark."""
    at = 0
    while at < len(index):
        for _string in range(2):
            length, at = _varint(index, at)
            at += length
        if at + 8 > len(index):
            raise ValueError("an index mark is cut short")
        (millis,) = struct.unpack_from("<q", index, at)
        at += 8
        yield millis


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data):
            raise ValueError("an index mark is cut short")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _day(millis: int) -> date:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)).date()
