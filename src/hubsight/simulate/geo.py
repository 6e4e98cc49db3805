"""Where simulated people and machines sign in from: cities, time zones and real address blocks.

The address blocks are residential or hosting ranges that public geolocation databases place in
the named country, so a record carrying only an IP geolocates where its sign-in says it is.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class City:
    """A place users live in, with what Entra writes into ``properties.location``."""

    country: str
    country_name: str
    city: str
    state: str
    latitude: float
    longitude: float
    utc_offset: float
    # (first address, number of addresses, autonomous system number) of the local providers.
    networks: tuple[tuple[int, int, int], ...]

    def ip(self, rng: random.Random) -> str:
        """A random public address of one of this city's providers."""
        first, size, _ = rng.choice(self.networks)
        return dotted(first + rng.randrange(1, size - 1))

    def ip_and_asn(self, rng: random.Random) -> tuple[str, int]:
        """A random public address and the autonomous system that announces it."""
        first, size, asn = rng.choice(self.networks)
        return dotted(first + rng.randrange(1, size - 1)), asn


def dotted(address: int) -> str:
    """An IPv4 address as text (``ipaddress`` does the same several times slower)."""
    return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}"


def _net(cidr: str, asn: int) -> tuple[int, int, int]:
    network = ipaddress.IPv4Network(cidr)
    return int(network.network_address), network.num_addresses, asn


_COMCAST = _net("73.0.0.0/8", 7922)
_TELEKOM = (_net("79.192.0.0/10", 3320), _net("91.0.0.0/10", 3320))
_ORANGE_FR = _net("90.0.0.0/9", 3215)
_BT = _net("86.128.0.0/10", 2856)

CITIES: tuple[City, ...] = (
    City("US", "United States", "Seattle", "Washington", 47.6062, -122.3321, -8, (_COMCAST,)),
    City("US", "United States", "New York", "New York", 40.7128, -74.0060, -5, (_COMCAST,)),
    City("US", "United States", "Chicago", "Illinois", 41.8781, -87.6298, -6, (_COMCAST,)),
    City("DE", "Germany", "Berlin", "Berlin", 52.5200, 13.4050, 1, _TELEKOM),
    City("DE", "Germany", "Munich", "Bavaria", 48.1372, 11.5755, 1, _TELEKOM),
    City("FR", "France", "Paris", "Paris", 48.8566, 2.3522, 1, (_ORANGE_FR,)),
    City("FR", "France", "Lyon", "Rhone", 45.7640, 4.8357, 1, (_ORANGE_FR,)),
    City("GB", "United Kingdom", "London", "England", 51.5074, -0.1278, 0, (_BT,)),
    City("GB", "United Kingdom", "Manchester", "England", 53.4808, -2.2426, 0, (_BT,)),
    City(
        "NL",
        "Netherlands",
        "Amsterdam",
        "North Holland",
        52.3676,
        4.9041,
        1,
        (_net("84.24.0.0/13", 33915),),
    ),
    City("ES", "Spain", "Madrid", "Madrid", 40.4168, -3.7038, 1, (_net("83.32.0.0/11", 3352),)),
    City("PL", "Poland", "Warsaw", "Mazovia", 52.2297, 21.0122, 1, (_net("83.0.0.0/11", 5617),)),
    City(
        "SE",
        "Sweden",
        "Stockholm",
        "Stockholm",
        59.3293,
        18.0686,
        1,
        (_net("81.224.0.0/12", 3301),),
    ),
    City(
        "IN", "India", "New Delhi", "Delhi", 28.6139, 77.2090, 5.5, (_net("122.160.0.0/12", 24560),)
    ),
    City(
        "CA", "Canada", "Toronto", "Ontario", 43.6532, -79.3832, -5, (_net("99.224.0.0/11", 812),)
    ),
    City(
        "AU",
        "Australia",
        "Sydney",
        "New South Wales",
        -33.8688,
        151.2093,
        10,
        (_net("1.120.0.0/13", 1221),),
    ),
    City("JP", "Japan", "Tokyo", "Tokyo", 35.6762, 139.6503, 9, (_net("126.0.0.0/8", 17676),)),
)

# Where attacks come from in the scenarios: far from every home city above, or anonymizing.
HOSTILE_CITIES: tuple[City, ...] = (
    City(
        "NG",
        "Nigeria",
        "Lagos",
        "Lagos",
        6.5244,
        3.3792,
        1,
        (_net("105.112.0.0/12", 36873), _net("102.89.0.0/16", 29465)),
    ),
    City("RU", "Russia", "Moscow", "Moscow", 55.7558, 37.6173, 3, (_net("95.24.0.0/13", 8402),)),
    City(
        "CN", "China", "Shanghai", "Shanghai", 31.2304, 121.4737, 8, (_net("114.80.0.0/12", 4812),)
    ),
    City(
        "BR",
        "Brazil",
        "Sao Paulo",
        "Sao Paulo",
        -23.5505,
        -46.6333,
        -3,
        (_net("177.32.0.0/12", 28573),),
    ),
    City("VN", "Vietnam", "Hanoi", "Hanoi", 21.0278, 105.8342, 7, (_net("113.160.0.0/11", 45899),)),
)

# Microsoft's own addresses: Azure workloads (service principals, managed identities) and
# Azure Resource Manager's internal callers.
AZURE_NETWORKS: tuple[tuple[int, int, int], ...] = (
    _net("20.36.0.0/14", 8075),
    _net("40.112.0.0/13", 8075),
    _net("52.136.0.0/13", 8075),
)

# Tor exit relays: what the Defender "access from a Tor exit node" alerts see.
TOR_EXITS = _net("185.220.101.0/24", 60729)

AZURE_REGIONS: tuple[tuple[str, str], ...] = (
    ("westeurope", "West Europe"),
    ("northeurope", "North Europe"),
    ("eastus", "East US"),
    ("eastus2", "East US 2"),
    ("uksouth", "UK South"),
    ("germanywestcentral", "Germany West Central"),
)


def azure_ip(rng: random.Random) -> str:
    """A random address inside Azure's public ranges."""
    first, size, _ = rng.choice(AZURE_NETWORKS)
    return dotted(first + rng.randrange(1, size - 1))


# Where Entra places those relays.
TOR_CITY = City("DE", "Germany", "Frankfurt am Main", "Hesse", 50.1109, 8.6821, 1, (TOR_EXITS,))


def tor_ip(rng: random.Random) -> str:
    """A random address of a well-known block of Tor exit relays."""
    first, size, _ = TOR_EXITS
    return dotted(first + rng.randrange(1, size - 1))


def location(city: City) -> dict[str, object]:
    """The ``properties.location`` object Entra writes for a sign-in from ``city``."""
    return {
        "city": city.city,
        "state": city.state,
        "countryOrRegion": city.country,
        "geoCoordinates": {"latitude": city.latitude, "longitude": city.longitude},
    }
