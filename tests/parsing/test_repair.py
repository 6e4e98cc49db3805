"""Safe repairs of invalid JSON: each kind, the documents recovered, and what is refused."""

from __future__ import annotations

import msgspec
import pytest

from hubsight.errors import ParseError
from hubsight.parsing.repair import Repair, repair


def _decoded(data: bytes) -> list[object]:
    result = repair(data)
    return [msgspec.json.decode(document) for document in result.documents]


def test_single_quoted_pseudo_json_with_python_literals() -> None:
    text = b"{'a': 'it\\'s', 'b': True, 'c': None, 'd': \"say \\\"hi\\\"\", 'e': 'x \"y\"'}"
    result = repair(text)
    assert set(result.repairs) == {Repair.SINGLE_QUOTES, Repair.PYTHON_LITERAL}
    assert msgspec.json.decode(result.documents[0]) == {
        "a": "it's",
        "b": True,
        "c": None,
        "d": 'say "hi"',
        "e": 'x "y"',
    }


def test_raw_control_characters_in_strings_are_escaped() -> None:
    result = repair(b'{"text": "one\ntwo\tthree\r\x01"}')
    assert result.repairs == (Repair.RAW_CONTROL_CHARACTER,)
    assert msgspec.json.decode(result.documents[0]) == {"text": "one\ntwo\tthree\r\x01"}


def test_blob_placeholders_become_strings() -> None:
    result = repair(b'{"requestBody": [ 227 B blob data ], "responseBody": [1.5 KB blob data]}')
    assert result.repairs == (Repair.BLOB_PLACEHOLDER,)
    assert msgspec.json.decode(result.documents[0]) == {
        "requestBody": "[ 227 B blob data ]",
        "responseBody": "[1.5 KB blob data]",
    }


def test_nan_and_infinity_become_null() -> None:
    assert _decoded(b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": -1.5e-3}') == [
        {"a": None, "b": None, "c": None, "d": -1.5e-3}
    ]


def test_glued_records_are_split() -> None:
    result = repair(b'{"a": 1}{"b": [2, {"c": "}{"}]}\n{"d": 4}')
    assert Repair.CONCATENATED_RECORDS in result.repairs
    assert [msgspec.json.decode(d) for d in result.documents] == [
        {"a": 1},
        {"b": [2, {"c": "}{"}]},
        {"d": 4},
    ]


def test_trailing_commas_inside_and_after_a_record() -> None:
    result = repair(b'{"a": [1, 2, ], "b": {"c": 3,},},\n')
    assert result.repairs == (Repair.TRAILING_COMMA,)
    assert msgspec.json.decode(result.documents[0]) == {"a": [1, 2], "b": {"c": 3}}


def test_content_inside_strings_is_never_changed() -> None:
    text = b'{"s": "NaN True None [ 5 B blob data ] , } {", "t": \'\\u00e9\'}'
    assert _decoded(text) == [{"s": "NaN True None [ 5 B blob data ] , } {", "t": "é"}]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a": "unterminated', "unterminated string"),
        (b'{"a": [1, 2', "truncated"),
        (b'{"a": 1}}', "unbalanced"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"   ", "no JSON value"),
        (b"{a: 1}", "still not JSON"),
    ],
)
def test_unsafe_text_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        repair(data)
