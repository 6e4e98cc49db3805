"""Sample Azure records under tests/data/azure/<category>/ and the events they must produce.

Each ``NAME.json`` (a record or a whole message body, valid JSON or not, as Azure sent it) has a
``NAME.expected.json`` beside it: a list with one object per event, holding the fields (and
values) that event must have.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from hubsight.parsing.azure import build_registry
from hubsight.parsing.geoip import GeoIP
from hubsight.parsing.pipeline import MessageParser
from hubsight.sources.base import Message

DATA = Path(__file__).resolve().parents[1] / "data" / "azure"
RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEFAULT_DOMAIN = "contoso.com"


def sample_files() -> list[Path]:
    """Every sample record file, sorted."""
    return sorted(p for p in DATA.rglob("*.json") if not p.name.endswith(".expected.json"))


def expected_of(path: Path) -> list[dict[str, Any]]:
    """The expected events of a sample."""
    expected: list[dict[str, Any]] = json.loads(
        path.with_name(path.stem + ".expected.json").read_text()
    )
    return expected


def parse_bytes(
    body: bytes, geoip: GeoIP | None = None, parser: MessageParser | None = None
) -> list[dict[str, Any]]:
    """The events of one message body, as the JSON objects ``hubsight parse`` prints."""
    parser = parser or MessageParser(
        log_name="test", registry=build_registry(geoip), default_domain=DEFAULT_DOMAIN
    )
    message = Message(topic="t", partition=0, offset=7, value=body, received_time=RECEIVED)
    return [msgspec.json.decode(msgspec.json.encode(event)) for event in parser.parse(message)]


def resource_record(category: str, operation: str, properties: object, **top: object) -> bytes:
    """A common-schema record of ``category`` as bytes, with ``top`` as further top-level keys."""
    record = {
        "time": "2025-11-10T10:05:00Z",
        "category": category,
        "operationName": operation,
        "properties": properties,
        **top,
    }
    return msgspec.json.encode(record)
