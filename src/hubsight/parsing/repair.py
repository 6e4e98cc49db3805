"""Safe repairs of the invalid JSON Azure sometimes sends, so such records are parsed, not lost.

Seen in real Azure output and its published samples: single-quoted pseudo-JSON (a Python
``repr`` relayed by a function), raw newlines or tabs inside strings, ``[ 227 B blob data ]``
placeholders where a body was elided, ``NaN``/``Infinity``, records glued together as ``}{``, and
trailing commas. Each repair keeps every character of content: a quote style changes, a raw
control character becomes its escape, a placeholder becomes a string, a non-number becomes
``null``. Anything else is left alone and the record goes to Unparsed Data with the reason.
Repair runs only on text that failed to decode, so valid records never pay for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from hubsight.errors import ParseError


class Repair(StrEnum):
    """The kinds of repair, as counted in source health and ``hubsight parse --stats``."""

    SINGLE_QUOTES = "single_quotes"
    RAW_CONTROL_CHARACTER = "raw_control_character"
    BLOB_PLACEHOLDER = "blob_placeholder"
    NAN_INFINITY = "nan_infinity"
    PYTHON_LITERAL = "python_literal"
    CONCATENATED_RECORDS = "concatenated_records"
    TRAILING_COMMA = "trailing_comma"


@dataclass(frozen=True, slots=True)
class Repaired:
    """The valid JSON documents recovered from one broken text, and the repairs applied."""

    documents: tuple[bytes, ...]
    repairs: tuple[Repair, ...]


_PLAIN = re.compile(r"[^\"'{}\[\],A-Za-z\-]+")
_STRING_RUN = re.compile(r"[^\"'\\\x00-\x1f]+")
_WORD = re.compile(r"-?[A-Za-z_]+")
_BLOB = re.compile(r"\[\s*\d+(?:\.\d+)?\s*[KMG]?B\s+blob\s+data\s*\]")
_LITERALS = {
    "true": ("true", None),
    "false": ("false", None),
    "null": ("null", None),
    "NaN": ("null", Repair.NAN_INFINITY),
    "Infinity": ("null", Repair.NAN_INFINITY),
    "-Infinity": ("null", Repair.NAN_INFINITY),
    "True": ("true", Repair.PYTHON_LITERAL),
    "False": ("false", Repair.PYTHON_LITERAL),
    "None": ("null", Repair.PYTHON_LITERAL),
}
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_validate = msgspec.json.Decoder(msgspec.Raw).decode


def repair(data: bytes) -> Repaired:
    """Repair ``data`` into one or more valid JSON documents; raise ``ParseError`` if unsafe."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("not UTF-8 text, cannot repair") from exc
    scanner = _Scanner(text)
    documents = scanner.run()
    if not documents:
        raise ParseError("no JSON value found to repair")
    encoded = []
    for document in documents:
        raw = document.encode("utf-8")
        try:
            _validate(raw)
        except msgspec.DecodeError as exc:
            raise ParseError(f"still not JSON after repair: {exc}") from exc
        encoded.append(raw)
    repairs = scanner.repairs
    if len(encoded) > 1:
        repairs.add(Repair.CONCATENATED_RECORDS)
    return Repaired(tuple(encoded), tuple(sorted(repairs)))


class _Scanner:
    """One pass over the text, tracking strings and nesting; collects the repaired documents."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []
        self.repairs: set[Repair] = set()

    def run(self) -> list[str]:
        text = self.text
        out = self.out
        documents: list[str] = []
        depth = 0
        i = 0
        n = len(text)
        while i < n:
            plain = _PLAIN.match(text, i)
            if plain:
                out.append(plain.group())
                i = plain.end()
                continue
            char = text[i]
            if char in "\"'":
                i = self._string(i, char)
                continue
            if char == "[":
                blob = _BLOB.match(text, i)
                if blob:
                    self.repairs.add(Repair.BLOB_PLACEHOLDER)
                    out.append(msgspec.json.encode(blob.group()).decode())
                    i = blob.end()
                    continue
            if char in "{[":
                depth += 1
                out.append(char)
            elif char in "}]":
                self._drop_trailing_comma()
                depth -= 1
                if depth < 0:
                    raise ParseError(f"unbalanced {char!r} at character {i}")
                out.append(char)
                if depth == 0:
                    documents.append("".join(out).strip())
                    out.clear()
            elif char == "," and depth == 0:
                # A comma after a complete record (a record cut out of an array).
                self.repairs.add(Repair.TRAILING_COMMA)
            elif char == "," or (char == "-" and not text.startswith("-Infinity", i)):
                out.append(char)
            else:
                word = _WORD.match(text, i)
                token = word.group() if word else char
                literal, kind = _LITERALS.get(token, (token, None))
                if kind is not None:
                    self.repairs.add(kind)
                out.append(literal)
                i += len(token)
                continue
            i += 1
        if depth > 0:
            raise ParseError("unterminated object or array: the record is truncated")
        rest = "".join(out).strip()
        if rest:
            documents.append(rest)
        return documents

    def _string(self, start: int, quote: str) -> int:
        text = self.text
        n = len(text)
        if quote == "'":
            self.repairs.add(Repair.SINGLE_QUOTES)
        parts = ['"']
        i = start + 1
        while i < n:
            run = _STRING_RUN.match(text, i)
            if run:
                parts.append(run.group())
                i = run.end()
                continue
            char = text[i]
            if char == quote:
                parts.append('"')
                self.out.append("".join(parts))
                return i + 1
            if char == "\\":
                following = text[i + 1 : i + 2]
                # \' is not a JSON escape: inside a single-quoted string it is a plain quote.
                parts.append("'" if following == "'" else char + following)
                i += 2
                continue
            if char in "\"'":
                parts.append('\\"' if char == '"' else "'")
            else:
                self.repairs.add(Repair.RAW_CONTROL_CHARACTER)
                parts.append(_ESCAPES.get(char, f"\\u{ord(char):04x}"))
            i += 1
        raise ParseError(f"unterminated string starting at character {start}")

    def _drop_trailing_comma(self) -> None:
        out = self.out
        k = len(out) - 1
        while k >= 0 and out[k].isspace():
            k -= 1
        if k >= 0 and out[k] == ",":
            del out[k]
            self.repairs.add(Repair.TRAILING_COMMA)
