"""Where a source address is located: Microsoft's own location first, then the GeoIP databases."""

from __future__ import annotations

import json

import pytest

from hubsight.parsing.geoip import GeoIP, MemoryGeoDatabase

from tests.parsing.samples import DATA, parse_bytes

SIGNIN = json.loads((DATA / "SignInLogs" / "success-mfa-push.json").read_text())
ADMIN = (DATA / "Administrative" / "list-shared-access-keys-ip-port.json").read_bytes()
GEO = GeoIP(
    databases=[
        MemoryGeoDatabase(
            {
                "81.2.69.160": {"country_code": "FR", "city": "Paris", "state1": "Ile-de-France"},
                "52.174.3.10": {
                    "country": {"iso_code": "NL", "names": {"en": "Netherlands"}},
                    "city": {"names": {"en": "Amsterdam"}},
                    "location": {"latitude": 52.37, "longitude": 4.89},
                },
            }
        ),
        MemoryGeoDatabase({"81.2.69.160": {"autonomous_system_organization": "Example ISP"}}),
    ]
)


def test_microsoft_location_wins_and_the_database_adds_the_organization() -> None:
    (event,) = parse_bytes(json.dumps(SIGNIN).encode(), geoip=GEO)
    assert (event["geoip_country_code"], event["geoip_city"]) == ("GB", "London")
    assert event["geoip_organization"] == "Example ISP"


def test_database_locates_addresses_without_microsoft_location() -> None:
    record = dict(SIGNIN, properties=dict(SIGNIN["properties"], location={}), location="")
    (event,) = parse_bytes(json.dumps(record).encode(), geoip=GEO)
    assert (event["geoip_country_code"], event["geoip_country_name"]) == ("FR", "France")
    assert (event["geoip_city"], event["geoip_region"]) == ("Paris", "Ile-de-France")
    (admin,) = parse_bytes(ADMIN, geoip=GEO)
    assert admin["geoip_country_name"] == "Netherlands"
    assert (admin["geoip_latitude"], admin["geoip_longitude"]) == (52.37, 4.89)


def test_private_addresses_are_never_looked_up() -> None:
    geo = GeoIP(databases=[MemoryGeoDatabase({"10.0.0.5": {"country_code": "US"}})])
    record = dict(
        SIGNIN,
        callerIpAddress="10.0.0.5",
        properties=dict(SIGNIN["properties"], ipAddress="10.0.0.5"),
    )
    (event,) = parse_bytes(json.dumps(record).encode(), geoip=geo)
    assert event["source_ip_scope"] == "private"
    assert "geoip_country_code" not in event


@pytest.mark.parametrize("address", ["", "<IP ADDRESS>", "0.0.0.0"])  # noqa: S104 - data
def test_missing_or_placeholder_address_keeps_microsoft_location(address: str) -> None:
    record = dict(
        SIGNIN, callerIpAddress=address, properties=dict(SIGNIN["properties"], ipAddress=address)
    )
    (event,) = parse_bytes(json.dumps(record).encode(), geoip=GEO)
    assert (event["geoip_country_code"], event["geoip_city"]) == ("GB", "London")
    assert event.get("source_ip_scope") in (None, "reserved")
    # No public address: no organization can be looked up.
    assert "geoip_organization" not in event
