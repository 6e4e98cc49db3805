"""Split an Event Hub message body into Azure records.

Azure Monitor sends ``{"records": [...]}``; relays and exports also send a bare record, a JSON
array of records, or newline-delimited records. Each record is returned as its exact bytes, so
the raw record is stored as received.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import msgspec


class _Envelope(msgspec.Struct):
    records: list[msgspec.Raw]


class Piece(NamedTuple):
    """One record's bytes, or the bytes that could not be read as a record and why.

    A named tuple: one is built per record, and a frozen dataclass costs several times more.
    """

    data: bytes
    error: str | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)
_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])


TOO_DEEP = "nested too deeply to read"


def split_message(value: bytes) -> list[Piece]:
    """Return the records of one message body; unreadable parts come back with their reason."""
    if not value.strip():
        return [Piece(value, "empty message")]
    try:
        return _split(value)
    except RecursionError:
        # The decoder recurses once per level: a record nested thousands deep must not take the
        # records beside it down with it, so the envelope is cut by a scan that does not recurse.
        # Each piece then meets the same limit alone, and only it ends in Unparsed Data.
        pieces = _split_by_scan(value) or _split_lines(value, TOO_DEEP)
        return [Piece(value)] if all(piece.error for piece in pieces) else pieces


def _split(value: bytes) -> list[Piece]:
    try:
        return [Piece(bytes(record)) for record in _envelope_decoder.decode(value).records]
    except msgspec.DecodeError:
        pass
    try:
        whole = _raw_decoder.decode(value)
    except msgspec.DecodeError as exc:
        return _split_lines(value, str(exc))
    if value.lstrip()[:1] == b"[":
        return [Piece(bytes(record)) for record in _list_decoder.decode(value)]
    return [Piece(bytes(whole))]


_ARRAY_START = re.compile(rb'\s*(?:\{\s*"records"\s*:\s*)?\[')
_STRUCTURE = re.compile(rb'[\\"\[\]{},]')


def _split_by_scan(value: bytes) -> list[Piece] | None:
    """The elements of a ``{"records": [...]}`` envelope or a top-level array, found by bytes.

    None when the message is neither, or its array does not close: it then stays one piece.
    """
    start = _ARRAY_START.match(value)
    if start is None:
        return None
    pieces: list[Piece] = []
    depth = 0
    in_string = escaped = False
    element = start.end()
    for match in _STRUCTURE.finditer(value, start.end()):
        char = match.group()
        if in_string:
            if escaped:
                escaped = False
            elif char == b"\\":
                # An escape covers the next byte only; a run of them alternates.
                escaped = value[match.end() : match.end() + 1] in (b'"', b"\\")
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
        elif depth and char in (b"]", b"}"):
            depth -= 1
        elif depth == 0 and char in (b",", b"]"):
            piece = value[element : match.start()].strip()
            if piece:
                pieces.append(Piece(piece))
            if char == b"]":
                return pieces
            element = match.end()
    return None


def _split_lines(value: bytes, whole_error: str) -> list[Piece]:
    lines = [line.rstrip(b"\r") for line in value.split(b"\n") if line.strip()]
    # Newline-delimited records are objects, one per line; anything else (a broken
    # pretty-printed record, binary that happens to hold newlines) stays one piece.
    if len(lines) < 2 or not all(line.lstrip()[:1] == b"{" for line in lines):
        return [Piece(value, f"not JSON: {whole_error}")]
    pieces: list[Piece] = []
    for line in lines:
        try:
            # A file of messages, one ``{"records": [...]}`` per line, as relays write them.
            pieces.extend(Piece(bytes(record)) for record in _envelope_decoder.decode(line).records)
            continue
        except (msgspec.DecodeError, RecursionError):
            pass
        try:
            pieces.append(Piece(bytes(_raw_decoder.decode(line))))
        except msgspec.DecodeError as exc:
            pieces.append(Piece(line, f"not JSON: {exc}"))
        except RecursionError:
            pieces.append(Piece(line))
    if all(piece.error for piece in pieces):
        # Not newline-delimited records after all (a pretty-printed record that is broken):
        # keep the message whole so that its bytes stay together.
        return [Piece(value, f"not JSON: {whole_error}")]
    return pieces
