"""The shared normalizations: severities and levels, user names, tolerant decoding."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from hubsight.errors import ParseError
from hubsight.parsing.azure.normalize import (
    TolerantDecoder,
    json_value,
    set_user,
    severity_of,
)
from hubsight.parsing.event import Event, LogSet


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        (4, "INFORMATIONAL"),
        ("4", "INFORMATIONAL"),
        ("Informational", "INFORMATIONAL"),
        ("Information", "INFORMATIONAL"),
        ("verbose", "INFORMATIONAL"),
        (5, "INFORMATIONAL"),
        ("Low", "LOW"),
        ("Medium", "MEDIUM"),
        ("Warning", "MEDIUM"),
        (3, "MEDIUM"),
        ("High", "HIGH"),
        ("Error", "HIGH"),
        (2, "HIGH"),
        ("Critical", "CRITICAL"),
        (1, "CRITICAL"),
        ("  HIGH ", "HIGH"),
        ("unknown", None),
        (9, None),
        (True, None),
        (None, None),
        ([], None),
    ],
)
def test_severity_of(value: object, severity: str | None) -> None:
    assert severity_of(value) == severity


def _event() -> Event:
    return Event(
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        log_set=LogSet.INGRESS_AUTHENTICATION,
        log_name="t",
        raw=msgspec.Raw(b"{}"),
    )


@pytest.mark.parametrize(
    ("name", "default_domain", "expected"),
    [
        (
            "Alice.Martin@Contoso.COM",
            None,
            ("alice.martin@contoso.com", "alice.martin", "contoso.com"),
        ),
        ("JDoe", "Contoso.com", ("jdoe@contoso.com", "jdoe", "contoso.com")),
        ("jdoe", None, ("jdoe", "jdoe", None)),
        ("CONTOSO\\JDoe", "contoso.com", ("contoso\\jdoe", "jdoe", "contoso")),
        ("a@b@example.org", None, ("a@b@example.org", "a@b", "example.org")),
        ("   ", "contoso.com", (None, None, None)),
        (None, "contoso.com", (None, None, None)),
    ],
)
def test_set_user(
    name: str | None, default_domain: str | None, expected: tuple[str | None, ...]
) -> None:
    event = _event()
    set_user(event, name, default_domain)
    assert (event.user, event.account, event.account_domain) == expected


class _Schema(msgspec.Struct):
    operationName: str | None = None
    count: int | None = None
    nested: list[int] | None = None


def test_tolerant_decoder_matches_key_case_coerces_and_drops_misfits() -> None:
    decoder = TolerantDecoder(_Schema, probe="operationName")
    assert decoder.decode(b'{"operationName": "x", "count": 2}') == _Schema("x", 2)
    assert decoder.decode(b'{"OPERATIONNAME": "x", "Count": "3"}') == _Schema("x", 3)
    assert decoder.decode(b'{"operationName": "x", "count": {"a": 1}}') == _Schema("x")
    assert decoder.decode(b'{"operationName": "x", "nested": [1, "z", 3]}') == _Schema(
        "x", None, [1, 3]
    )
    with pytest.raises(ParseError, match="expected a JSON object"):
        decoder.decode(b"[1, 2]")
    with pytest.raises(ParseError, match="not JSON"):
        decoder.decode(b'{"operationName": ')


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ('"Global Administrator"', "Global Administrator"),
        ('["a", "b"]', ["a", "b"]),
        ('{"state": "disabled"}', {"state": "disabled"}),
        ("true", True),
        ("True", "True"),
        ("[not json", "[not json"),
        ("plain", "plain"),
        (5, 5),
        (None, None),
    ],
)
def test_json_value_decodes_quoted_json_only(value: object, decoded: object) -> None:
    assert json_value(value) == decoded
