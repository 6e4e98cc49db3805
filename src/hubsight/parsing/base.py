"""The parsing stage's contract: one Azure record in, one normalized ``Event`` out.

A parser module claims one or more Azure categories in the registry and implements
``RecordParser``. It may raise ``ParseError`` (or anything else): the pipeline turns every failure
into an *Unparsed Data* event carrying the reason, so a bad record is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hubsight.parsing.event import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordContext:
    """What a parser knows about a record besides its bytes."""

    log_name: str
    default_domain: str | None = None
    enqueued_time: datetime | None = None
    received_time: datetime | None = None


class RecordParser(Protocol):
    """Turns the raw JSON bytes of one record into a normalized event."""

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize ``record``; raise ``ParseError`` with the reason when it cannot."""
        ...


class ParserRegistry(Protocol):
    """Finds the parser for a record from its category (or shape); None when none claims it."""

    def parser_for(self, category: str | None, record: bytes) -> RecordParser | None:
        """Return the parser claiming this record, or None."""
        ...
