"""Source addresses: read them out of Azure's messy fields, classify them, and geolocate them.

Lookups use MaxMind-format databases (``maxminddb``): the GeoLite2/GeoIP2 nested schema and the
flat schema of the ip-location-db packages (``country_code``, ``state1``, ``city``; separate IPv4
and IPv6 files) are both understood, and an ASN database adds the organization. Private,
loopback, link-local and Azure-internal addresses are classified and never looked up.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import maxminddb
import msgspec
import pycountry

from hubsight.errors import ConfigError

GEOIP_ENV = "HUBSIGHT_GEOIP"
# Where scripts/fetch-geoip.sh puts the default database, relative to the data directory.
DEFAULT_GEOIP_SUBDIR = "geoip"
_CACHE_LIMIT = 65_536


class IpScope(StrEnum):
    """What kind of address a source IP is; only public ones are geolocated."""

    PUBLIC = "public"
    PRIVATE = "private"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link_local"
    AZURE_INTERNAL = "azure_internal"
    RESERVED = "reserved"


# Azure's platform addresses: the wire server (DNS, DHCP, health probes) and the instance
# metadata service. They appear as callers of platform operations and mean "inside Azure".
_AZURE_INTERNAL = frozenset({"168.63.129.16", "169.254.169.254"})
_V4_RANGES: tuple[tuple[int, int, IpScope], ...] = tuple(
    (int(net.network_address), int(net.netmask), scope)
    for net, scope in (
        (ipaddress.IPv4Network("127.0.0.0/8"), IpScope.LOOPBACK),
        (ipaddress.IPv4Network("10.0.0.0/8"), IpScope.PRIVATE),
        (ipaddress.IPv4Network("172.16.0.0/12"), IpScope.PRIVATE),
        (ipaddress.IPv4Network("192.168.0.0/16"), IpScope.PRIVATE),
        # Carrier-grade NAT space; Azure also uses it inside some services.
        (ipaddress.IPv4Network("100.64.0.0/10"), IpScope.PRIVATE),
        (ipaddress.IPv4Network("169.254.0.0/16"), IpScope.LINK_LOCAL),
        (ipaddress.IPv4Network("0.0.0.0/8"), IpScope.RESERVED),
        (ipaddress.IPv4Network("224.0.0.0/3"), IpScope.RESERVED),
    )
)
_V6_ULA = ipaddress.IPv6Network("fc00::/7")


def split_address(text: str | None) -> tuple[str, int | None] | None:
    """The IP and port in an address field (``ip``, ``ip:port``, ``[v6]:port``, a CIDR), or None.

    Returns the address in canonical form; empty strings and garbage give None.
    """
    if not text:
        return None
    dotted = _dotted_quad(text)
    if dotted is not None:  # the common case, without the cost of the ipaddress module
        return text, None
    text = text.strip()
    if "," in text:  # a forwarded-for list: the first hop is the client
        text = text.split(",", 1)[0].strip()
    port: int | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        text = host
    elif text.count(":") == 1:
        host, _, tail = text.partition(":")
        if tail.isdigit():
            port = int(tail)
        text = host
    text = text.split("/", 1)[0].split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if port is not None and not 0 <= port <= 65535:
        port = None
    return str(address), port


def _dotted_quad(text: str) -> int | None:
    """The value of a canonical dotted-quad IPv4 string (no leading zeros), else None."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not part.isdigit() or not part.isascii() or (part[0] == "0" and len(part) > 1):
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return value


def classify(ip: str) -> IpScope:
    """The scope of a canonical IP address string."""
    if ip in _AZURE_INTERNAL:
        return IpScope.AZURE_INTERNAL
    value = _dotted_quad(ip)
    if value is None:
        address = ipaddress.ip_address(ip)
        if isinstance(address, ipaddress.IPv4Address):
            value = int(address)
        elif address.ipv4_mapped is not None:
            return classify(str(address.ipv4_mapped))
        elif address.is_loopback:
            return IpScope.LOOPBACK
        elif address.is_link_local:
            return IpScope.LINK_LOCAL
        elif address.is_private or address in _V6_ULA:
            return IpScope.PRIVATE
        else:
            return IpScope.PUBLIC if address.is_global else IpScope.RESERVED
    for network, mask, scope in _V4_RANGES:
        if value & mask == network:
            return scope
    return IpScope.PUBLIC


class GeoLocation(msgspec.Struct, frozen=True, kw_only=True):
    """Where an address is, as far as is known (a Struct: built per record, so it must be cheap)."""

    country_code: str | None = None
    country_name: str | None = None
    region: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    organization: str | None = None


@dataclass(frozen=True, slots=True)
class SourceAddress:
    """An address as read from a record: canonical IP, port, scope and database location."""

    ip: str
    port: int | None
    scope: IpScope
    location: GeoLocation | None


class GeoDatabase(Protocol):
    """A MaxMind-format reader: ``maxminddb.Reader`` or an in-memory stand-in."""

    def get(self, ip_address: str) -> Any:
        """The database record for ``ip_address``, or None."""
        ...


@dataclass(frozen=True, slots=True)
class MemoryGeoDatabase:
    """An in-memory stand-in for a MaxMind file (tests, demos): exact addresses to records."""

    records: Mapping[str, Mapping[str, Any]]

    def get(self, ip_address: str) -> Mapping[str, Any] | None:
        """The record stored for ``ip_address``, or None."""
        return self.records.get(ip_address)


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    """A loaded database: its file, type and build time (shown by ``hubsight status``)."""

    path: str
    database_type: str
    built: datetime


# Read once: pycountry's own lookup is ~2 µs, too slow to run per record.
_COUNTRY_NAMES: Mapping[str, str] = MappingProxyType(
    {
        str(country.alpha_2): str(getattr(country, "common_name", None) or country.name)
        for country in pycountry.countries
    }
)


def country_name(code: str | None) -> str | None:
    """The English short name of an ISO 3166 alpha-2 country code, or None."""
    if not code:
        return None
    return _COUNTRY_NAMES.get(code) or _COUNTRY_NAMES.get(code.upper())


@dataclass(slots=True)
class GeoIP:
    """Classifies and geolocates addresses with zero or more databases; caches per instance."""

    databases: Sequence[GeoDatabase] = ()
    info: Sequence[DatabaseInfo] = ()
    _cache: dict[str, GeoLocation | None] = field(default_factory=dict, repr=False)
    _sources: dict[str, SourceAddress | None] = field(default_factory=dict, repr=False)

    def source(self, text: str | None) -> SourceAddress | None:
        """An address field read, classified and (when public) located; None if no address."""
        if not text:
            return None
        # Real traffic repeats its addresses: the cache saves the parsing on every repeat.
        try:
            return self._sources[text]
        except KeyError:
            pass
        parsed = split_address(text)
        found: SourceAddress | None = None
        if parsed is not None:
            ip, port = parsed
            scope = classify(ip)
            location = self.locate(ip) if scope is IpScope.PUBLIC else None
            found = SourceAddress(ip, port, scope, location)
        if len(self._sources) >= _CACHE_LIMIT:
            self._sources.clear()
        self._sources[text] = found
        return found

    def locate(self, ip: str) -> GeoLocation | None:
        """The location of a public canonical IP, or None when no database knows it."""
        if not self.databases:
            return None
        try:
            return self._cache[ip]
        except KeyError:
            pass
        location = self._lookup(ip)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[ip] = location
        return location

    def _lookup(self, ip: str) -> GeoLocation | None:
        merged: dict[str, Any] = {}
        for database in self.databases:
            try:
                record = database.get(ip)
            except ValueError:  # an IPv6 address asked of an IPv4-only file
                continue
            if isinstance(record, Mapping):
                for key, value in _fields_of(record).items():
                    merged.setdefault(key, value)
        if not merged:
            return None
        if "country_code" in merged and "country_name" not in merged:
            merged["country_name"] = country_name(merged["country_code"])
        return GeoLocation(**merged)


def _fields_of(record: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    country = record.get("country")
    if isinstance(country, Mapping):  # GeoLite2 / GeoIP2 nested schema
        _put(found, "country_code", country.get("iso_code"))
        _put(found, "country_name", _english(country))
        subdivisions = record.get("subdivisions")
        if isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], Mapping):
            _put(found, "region", _english(subdivisions[0]))
        city = record.get("city")
        if isinstance(city, Mapping):
            _put(found, "city", _english(city))
        location = record.get("location")
        if isinstance(location, Mapping):
            _put(found, "latitude", location.get("latitude"))
            _put(found, "longitude", location.get("longitude"))
    else:  # the flat ip-location-db schema
        _put(found, "country_code", record.get("country_code"))
        _put(found, "region", record.get("state1"))
        _put(found, "city", record.get("city"))
        _put(found, "latitude", record.get("latitude"))
        _put(found, "longitude", record.get("longitude"))
    _put(found, "organization", record.get("autonomous_system_organization"))
    return found


def _english(node: Mapping[str, Any]) -> object:
    names = node.get("names")
    return names.get("en") if isinstance(names, Mapping) else None


def _put(found: dict[str, Any], key: str, value: object) -> None:
    if isinstance(value, str) and value:
        found[key] = value
    elif isinstance(value, float | int) and not isinstance(value, bool):
        found[key] = float(value)


def geoip_paths(configured: str | Path | None, data_dir: Path | None) -> list[Path]:
    """The database files to load: the setting (a file, a folder, or ``os.pathsep``-separated
    list; else ``$HUBSIGHT_GEOIP``), else ``<data dir>/geoip``; missing defaults give []."""
    setting = str(configured) if configured else os.environ.get(GEOIP_ENV, "")
    # The hint names where the setting came from: `hubsight run` has no --geoip option.
    named = "--geoip" if configured else GEOIP_ENV
    fallback = (
        f"leave it out to use {GEOIP_ENV}, else <data dir>/geoip"
        if configured
        else "unset it to use <data dir>/geoip"
    )
    if not setting:
        if data_dir is None:
            return []
        default = data_dir / DEFAULT_GEOIP_SUBDIR
        return sorted(default.glob("*.mmdb")) if default.is_dir() else []
    paths: list[Path] = []
    for part in setting.split(os.pathsep):
        path = Path(part)
        if path.is_dir():
            paths.extend(sorted(path.glob("*.mmdb")))
        elif path.is_file():
            paths.append(path)
        else:
            raise ConfigError(
                f"GeoIP database {path} does not exist",
                hint=f"point {named} at a MaxMind .mmdb file or a folder of them, or {fallback}; "
                "scripts/fetch-geoip.sh downloads one into <data dir>/geoip",
            )
    return paths


def open_geoip(paths: Sequence[Path]) -> GeoIP:
    """A ``GeoIP`` reading the given MaxMind database files."""
    readers: list[GeoDatabase] = []
    info: list[DatabaseInfo] = []
    for path in paths:
        try:
            reader = maxminddb.open_database(str(path))
        except (OSError, maxminddb.InvalidDatabaseError) as exc:
            raise ConfigError(
                f"cannot read GeoIP database {path}: {exc}",
                hint="download it again with scripts/fetch-geoip.sh or point at another file",
            ) from exc
        meta = reader.metadata()
        readers.append(reader)
        info.append(
            DatabaseInfo(
                path=str(path),
                database_type=str(meta.database_type),
                built=datetime.fromtimestamp(meta.build_epoch, tz=UTC),
            )
        )
    return GeoIP(databases=readers, info=info)


def describe_geoip(configured: str | Path | None, data_dir: Path | None) -> list[dict[str, str]]:
    """What ``hubsight status`` shows about GeoIP: each database file, its type and build date.

    Raises ``ConfigError`` when a configured database is missing or unreadable.
    """
    geo = open_geoip(geoip_paths(configured, data_dir))
    return [
        {
            "path": info.path,
            "type": info.database_type,
            "built": info.built.date().isoformat(),
        }
        for info in geo.info
    ]
