"""What every Azure parser shares: tolerant typed decoding and the normalization of common fields.

Parsers decode with a typed ``msgspec`` schema of only the fields they use (fast, and the raw bytes
are kept untouched). When a record does not fit the schema (a key in another case, a number sent
as a string, a field of an unexpected type), ``TolerantDecoder`` falls back to a generic decode,
matches keys case-insensitively, coerces strings to numbers, and drops the fields that still do
not fit, so one odd field costs that field, not the record.
"""

from __future__ import annotations

import re
import typing
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from hubsight.errors import ParseError
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.geoip import GeoIP, GeoLocation, IpScope, country_name
from hubsight.parsing.timeparse import parse_time

T = TypeVar("T", bound=msgspec.Struct)

_MAX_DROPPED_FIELDS = 16
_ERROR_PATH = re.compile(r"- at `\$((?:\.[^.`\[]+|\[\d+\])*)`$")
_PATH_PART = re.compile(r"\.([^.`\[]+)|\[(\d+)\]")


class Localized(msgspec.Struct):
    """An Activity Log string in the portal/REST shape: ``{"value", "localizedValue"}``."""

    value: str | None = None
    localizedValue: str | None = None


LocalizedText = str | Localized | None


class Coordinates(msgspec.Struct):
    """Latitude and longitude as Entra writes them."""

    latitude: float | None = None
    longitude: float | None = None


class EntraLocation(msgspec.Struct):
    """Microsoft's own location of a sign-in or risk detection address."""

    city: str | None = None
    state: str | None = None
    countryOrRegion: str | None = None
    geoCoordinates: Coordinates | None = None


def entra_location(location: EntraLocation | None, country_code: str | None) -> GeoLocation | None:
    """Microsoft's location as a ``GeoLocation``; else just the country code if one is given."""
    if location is not None and location.countryOrRegion:
        coordinates = location.geoCoordinates or Coordinates()
        return GeoLocation(
            country_code=location.countryOrRegion,
            country_name=country_name(location.countryOrRegion),
            region=location.state or None,
            city=location.city or None,
            latitude=coordinates.latitude,
            longitude=coordinates.longitude,
        )
    if country_code and len(country_code) == 2:
        return GeoLocation(country_code=country_code, country_name=country_name(country_code))
    return None


def text_of(value: LocalizedText) -> str | None:
    """The plain text of a string or ``{value, localizedValue}`` object; '' becomes None."""
    if isinstance(value, Localized):
        value = value.value or value.localizedValue
    return value or None


class TolerantDecoder(Generic[T]):
    """Decodes JSON into ``schema`` fast, falling back to key-case and type tolerance.

    ``probe`` names a field every well-formed record has; when the fast decode leaves it unset,
    the keys are probably in another case (some exports lower-case them all) and the record is
    decoded again matching keys case-insensitively.
    """

    def __init__(self, schema: type[T], probe: str | None = None) -> None:
        self.schema = schema
        self._probe = probe
        self._fast = msgspec.json.Decoder(schema)
        self._keys = {name.lower(): name for name in _field_names(schema)}

    def decode(self, data: bytes | str) -> T:
        """The record as ``schema``; raise ``ParseError`` if it is not a JSON object."""
        try:
            result = self._fast.decode(data)
        except msgspec.ValidationError:
            return self.convert(msgspec.json.decode(data))
        except msgspec.DecodeError as exc:
            raise ParseError(f"not JSON: {exc}") from exc
        if self._probe is not None and getattr(result, self._probe) is None:
            return self.convert(msgspec.json.decode(data))
        return result

    def convert(self, value: object) -> T:
        """Convert an already decoded JSON value into ``schema``, dropping fields that misfit."""
        if not isinstance(value, dict):
            raise ParseError(f"expected a JSON object, got {type(value).__name__}")
        canonical: dict[str, Any] = self._canonical(value)
        for _ in range(_MAX_DROPPED_FIELDS):
            try:
                return msgspec.convert(canonical, self.schema, strict=False)
            except msgspec.ValidationError as exc:
                if not _drop_at(canonical, str(exc)):
                    raise ParseError(f"record does not fit its schema: {exc}") from exc
        raise ParseError(f"more than {_MAX_DROPPED_FIELDS} fields of unexpected types")

    def _canonical(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self._keys.get(str(k).lower(), k): self._canonical(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._canonical(item) for item in value]
        return value


def _field_names(schema: object, seen: set[object] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if schema in seen:
        return set()
    seen.add(schema)
    names: set[str] = set()
    if isinstance(schema, type) and issubclass(schema, msgspec.Struct):
        hints = typing.get_type_hints(schema)
        for field in msgspec.structs.fields(schema):
            names.add(field.encode_name)
            names |= _field_names(hints[field.name], seen)
    else:
        for arg in typing.get_args(schema):
            names |= _field_names(arg, seen)
    return names


def _drop_at(value: dict[str, Any], message: str) -> bool:
    """Remove the value a validation error points at; False when it cannot be located."""
    match = _ERROR_PATH.search(message)
    if not match or not match.group(1):
        return False
    parts = [(m.group(1), m.group(2)) for m in _PATH_PART.finditer(match.group(1))]
    node: Any = value
    for key, index in parts[:-1]:
        node = node.get(key) if key is not None and isinstance(node, dict) else node
        if index is not None and isinstance(node, list):
            node = node[int(index)]
    key, index = parts[-1]
    if key is not None and isinstance(node, dict) and key in node:
        del node[key]
        return True
    if index is not None and isinstance(node, list) and int(index) < len(node):
        del node[int(index)]
        return True
    return False


def embedded(value: T | str | None, decoder: TolerantDecoder[T]) -> T | None:
    """A nested object that Azure may send as an object or as JSON inside a string."""
    if value is None or not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith("{"):
        return None
    try:
        return decoder.decode(text)
    except ParseError:
        return None


def json_value(value: object) -> object:
    """A value that may be JSON inside a string, decoded when it is; else returned as is."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "[", '"') or text in ("true", "false", "null"):
            try:
                return msgspec.json.decode(text)
            except msgspec.DecodeError:
                return value
    return value


def first_time(*values: object) -> datetime | None:
    """The first of ``values`` that is a readable time, in UTC."""
    for value in values:
        stamp = parse_time(value)
        if stamp is not None:
            return stamp
    return None


TIME_FROM_BROKER = "time_from_broker"


def new_event(
    record: bytes,
    ctx: RecordContext,
    *,
    log_set: LogSet,
    category: str | None,
    timestamp: datetime | None,
    azure_time: datetime | None,
) -> Event:
    """An event with the fields every parser sets; event time falls back to the broker's."""
    stamp = timestamp or azure_time or ctx.enqueued_time or ctx.received_time
    if stamp is None:
        raise ParseError("record has no readable time and no broker time was given")
    return Event(
        # A record without a readable time of its own ("not-a-time", 2026-02-30) says so.
        repairs=None if timestamp or azure_time else [TIME_FROM_BROKER],
        timestamp=stamp,
        log_set=log_set,
        log_name=ctx.log_name,
        raw=msgspec.Raw(record),
        azure_time=azure_time,
        enqueued_time=ctx.enqueued_time,
        received_time=ctx.received_time,
        category=category,
    )


_TEXT_FIELDS = tuple(
    field.name
    for field in msgspec.structs.fields(Event)
    if typing.get_type_hints(Event)[field.name] == (str | None)
)


def blanks_to_none(event: Event) -> Event:
    """Turn the empty strings Azure writes for "no value" into absent fields, and return ``event``.

    This visits every text field (a few microseconds), so the sign-in parser, the hot path,
    does the same per field instead.
    """
    for name in _TEXT_FIELDS:
        if getattr(event, name) == "":
            setattr(event, name, None)
    return event


def set_user(event: Event, name: str | None, default_domain: str | None) -> None:
    """Fill ``user`` (lower-cased UPN), ``account`` and ``account_domain`` from a user name."""
    if not name:
        return
    user = name.strip().lower()
    if not user:
        return
    if "@" in user:
        account, _, domain = user.rpartition("@")
    elif "\\" in user:  # DOMAIN\account, as ADFS and on-premises sources write it
        domain, _, account = user.partition("\\")
    else:
        account, domain = user, (default_domain or "").lower()
        if domain:
            user = f"{account}@{domain}"
    event.user = user
    event.account = account or None
    event.account_domain = domain or None


def set_source(
    event: Event, address: str | None, geoip: GeoIP, known: GeoLocation | None = None
) -> None:
    """Fill the source address, its scope and its location (``known`` first, then the database).

    When the address is missing or a placeholder (unreadable, or an unspecified/reserved one such
    as ``0.0.0.0``), Microsoft's own location (``known``) is still the best there is, so it is kept.
    """
    source = geoip.source(address)
    location = known
    if source is not None:
        event.source_ip = source.ip
        event.source_port = source.port
        event.source_ip_scope = source.scope
        if source.scope is IpScope.PUBLIC:
            location = known or source.location
        elif source.scope is not IpScope.RESERVED:
            return  # a private or internal address: no place to name
    if location is None:
        return
    event.geoip_country_code = location.country_code
    event.geoip_country_name = location.country_name or country_name(location.country_code)
    event.geoip_region = location.region
    event.geoip_city = location.city
    event.geoip_latitude = location.latitude
    event.geoip_longitude = location.longitude
    if location.organization:
        event.geoip_organization = location.organization
    elif known is not None and source is not None and source.location is not None:
        # Microsoft's own location has no organization: take it from the databases if any.
        event.geoip_organization = source.location.organization


_SEVERITIES = {
    "informational": "INFORMATIONAL",
    "information": "INFORMATIONAL",
    "info": "INFORMATIONAL",
    "verbose": "INFORMATIONAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "moderate": "MEDIUM",
    "warning": "MEDIUM",
    "high": "HIGH",
    "error": "HIGH",
    "critical": "CRITICAL",
}
# Azure Monitor's numeric levels: 1 Critical, 2 Error, 3 Warning, 4 Informational, 5 Verbose.
_LEVEL_NUMBERS = {1: "CRITICAL", 2: "HIGH", 3: "MEDIUM", 4: "INFORMATIONAL", 5: "INFORMATIONAL"}


def severity_of(value: object) -> str | None:
    """Normalize a severity or level (name, number or numeric string) to INFORMATIONAL..CRITICAL."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _LEVEL_NUMBERS.get(int(value))
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return _LEVEL_NUMBERS.get(int(text))
        return _SEVERITIES.get(text)
    return None


def nonempty(value: object) -> str | None:
    """``value`` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def as_int(value: object) -> int | None:
    """An integer from a number or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class ModifiedProperty(msgspec.Struct):
    """One changed property of an Entra audit or provisioning target."""

    displayName: str | None = None
    oldValue: Any = None
    newValue: Any = None


def change_of(change: ModifiedProperty) -> dict[str, Any]:
    """A property change with its old and new values decoded from their quoted JSON."""
    return {
        "name": change.displayName,
        "old": json_value(change.oldValue),
        "new": json_value(change.newValue),
    }


def encode_json(value: object) -> msgspec.Raw | None:
    """A normalized structure as stored JSON, or None when empty."""
    if not value:
        return None
    return msgspec.Raw(msgspec.json.encode(value))
