"""Messages in, normalized events out: split, dispatch to a parser, and never lose a record.

Text that is not valid JSON goes through ``repair`` first; each record recovered that way is
parsed from its repaired text (which is what ``raw`` then holds, since invalid JSON cannot be
stored as JSON) and lists the repairs applied in ``repairs``. Repairs change syntax only (quotes,
escapes, commas, record boundaries) or stand in for what JSON cannot hold (NaN becomes null, a
blob placeholder a string), so no content is lost.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from hubsight.errors import ParseError
from hubsight.parsing.base import ParserRegistry, RecordContext
from hubsight.parsing.envelope import TOO_DEEP, Piece, split_message
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.repair import repair
from hubsight.sources.base import Message


class _Localized(msgspec.Struct):
    value: str | None = None


class _Head(msgspec.Struct):
    """The few top-level keys that say what a record is; everything else is skipped unread."""

    category: str | _Localized | None = None
    Category: str | _Localized | None = None


_head_decoder = msgspec.json.Decoder(_Head)


# A plain-string category key near the start of the record: Azure writes the envelope keys
# before ``properties``. Accepted only when nothing before it opens or closes an object, so the
# key is certainly top-level; otherwise the record is decoded to find it.
_CATEGORY_VALUE = re.compile(rb'\s*:\s*"([^"\\]+)"')


def record_category(record: bytes) -> str | None:
    """The Azure category of a record, in whichever spelling it carries, or None."""
    start = record.find(b'"category"', 0, 2048)
    # Records arrive stripped, so a top-level key follows the record's only "{" so far; a
    # record that starts otherwise, or an escaped quote, takes the decoding path below.
    if start > 0 and record[0] == 0x7B and record[start - 1] != 0x5C:
        match = _CATEGORY_VALUE.match(record, start + 10)
        # Counted in place: a slice of the prefix would copy it for every record.
        if match and record.count(b"{", 0, start) == 1 and record.find(b"}", 0, start) < 0:
            try:
                return match.group(1).decode("utf-8")
            except UnicodeDecodeError:
                pass
    try:
        head = _head_decoder.decode(record)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    for value in (head.category, head.Category):
        if isinstance(value, _Localized):
            value = value.value
        if value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class EmptyRegistry:
    """A registry in which no category is claimed: every record goes to Unparsed Data."""

    def parser_for(self, category: str | None, record: bytes) -> None:
        """Claim nothing."""
        return None


@dataclass(slots=True)
class ParseCounters:
    """What a parser has seen, for source health: unparsed records by reason and category."""

    records: int = 0
    unparsed_by_category: dict[str, int] = field(default_factory=dict)
    dropped_unparsed: int = 0
    # Repairs of invalid JSON by kind (see ``hubsight.parsing.repair.Repair``).
    repairs: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class MessageParser:
    """Turns one message into its events, each carrying its position; failures become Unparsed."""

    log_name: str
    registry: ParserRegistry = field(default_factory=EmptyRegistry)
    default_domain: str | None = None
    # When false, records whose category nobody claims are counted but not stored. Messages that
    # cannot be read at all are always stored: they are errors, not noise.
    keep_unparsed: bool = True
    counters: ParseCounters = field(default_factory=ParseCounters)

    def parse(self, message: Message) -> list[Event]:
        """Return the events of ``message``: parsed, or Unparsed Data with the reason."""
        ctx = RecordContext(
            log_name=self.log_name,
            default_domain=self.default_domain,
            enqueued_time=message.enqueued_time,
            received_time=message.received_time,
        )
        events: list[Event] = []
        index = 0
        for piece in split_message(message.value):
            parsed: list[Event | None]
            try:
                if piece.error is None:
                    parsed = [self._parse_record(piece.data, ctx)]
                else:
                    parsed = self._parse_repaired(piece, ctx)
            except Exception as exc:  # noqa: BLE001 - whatever a record causes, it is kept
                parsed = [self._unparsed(piece.data, ctx, None, _reason(exc, "reading failed"))]
            for event in parsed:
                # Every record takes an index, stored or not, so indexes stay stable.
                index += 1
                if event is None:
                    continue
                event.source_topic = message.topic
                event.source_partition = message.partition
                event.source_offset = message.offset
                event.record_index = index - 1
                events.append(event)
        self.counters.records += len(events)
        return events

    def _parse_repaired(self, piece: Piece, ctx: RecordContext) -> list[Event | None]:
        try:
            repaired = repair(piece.data)
        except ParseError as exc:
            return [self._unparsed(piece.data, ctx, None, f"{piece.error} ({exc.message})")]
        for kind in repaired.repairs:
            self.counters.repairs[kind] = self.counters.repairs.get(kind, 0) + 1
        events: list[Event | None] = []
        for document in repaired.documents:
            for record in split_message(document):
                event: Event | None
                if record.error is not None:
                    event = self._unparsed(record.data, ctx, None, record.error)
                else:
                    event = self._parse_record(record.data, ctx)
                if event is not None:
                    event.repairs = [*repaired.repairs, *(event.repairs or [])]
                events.append(event)
        return events

    def _parse_record(self, record: bytes, ctx: RecordContext) -> Event | None:
        try:
            category = record_category(record)
        except RecursionError:
            return self._unparsed(record, ctx, None, TOO_DEEP)
        parser = self.registry.parser_for(category, record)
        if parser is None:
            reason = (
                f"no parser for category {category!r}" if category else "record has no category"
            )
            if not self.keep_unparsed:
                self._count_unparsed(category)
                self.counters.dropped_unparsed += 1
                return None
            return self._unparsed(record, ctx, category, reason)
        try:
            event = parser.parse(record, ctx)
        except Exception as exc:  # noqa: BLE001 - any parser failure is recorded, never raised
            return self._unparsed(record, ctx, category, _reason(exc, "parser failed"))
        # A parser's own repairs (a time taken from the broker) are counted like JSON's.
        for kind in event.repairs or ():
            self.counters.repairs[kind] = self.counters.repairs.get(kind, 0) + 1
        return event

    def _unparsed(
        self, data: bytes, ctx: RecordContext, category: str | None, reason: str
    ) -> Event:
        self._count_unparsed(category)
        raw, is_base64 = raw_of(data)
        timestamp = ctx.enqueued_time or ctx.received_time or datetime.now(UTC)
        return Event(
            timestamp=timestamp,
            log_set=LogSet.UNPARSED_DATA,
            log_name=ctx.log_name,
            raw=raw,
            raw_base64=is_base64 or None,
            parse_error=reason,
            category=category,
            enqueued_time=ctx.enqueued_time,
            received_time=ctx.received_time,
        )

    def _count_unparsed(self, category: str | None) -> None:
        key = category or "(none)"
        self.counters.unparsed_by_category[key] = self.counters.unparsed_by_category.get(key, 0) + 1


_raw_check = msgspec.json.Decoder(msgspec.Raw)
_encode = msgspec.json.Encoder().encode


def raw_of(data: bytes) -> tuple[msgspec.Raw, bool]:
    """The raw record as a JSON value to store verbatim, and whether it had to be base64-encoded.

    A JSON object is kept byte for byte. Anything else is kept as a JSON string of its text, or of
    its base64 when it is not UTF-8, so that the stored bytes always decode back to the input.
    """
    stripped = data.strip()
    if stripped[:1] == b"{":
        try:
            _raw_check.decode(stripped)
            return msgspec.Raw(stripped), False
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            # Too deep for the decoder is too deep for the store's JSON reader too: kept as text.
            pass
    try:
        return msgspec.Raw(_encode(data.decode("utf-8"))), False
    except UnicodeDecodeError:
        return msgspec.Raw(_encode(base64.b64encode(data).decode("ascii"))), True


def _reason(exc: BaseException, what: str) -> str:
    if isinstance(exc, RecursionError):
        return f"{what}: {TOO_DEEP}"
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{what}: {text}"
