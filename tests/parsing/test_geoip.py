"""Addresses read out of Azure's fields, classified, and located with MaxMind-format databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import maxminddb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from hubsight.errors import ConfigError
from hubsight.parsing.geoip import (
    GEOIP_ENV,
    GeoIP,
    GeoLocation,
    IpScope,
    classify,
    country_name,
    describe_geoip,
    geoip_paths,
    open_geoip,
    split_address,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("81.2.69.160", ("81.2.69.160", None)),
        ("81.2.69.160:51234", ("81.2.69.160", 51234)),
        (" 81.2.69.160 ", ("81.2.69.160", None)),
        ("2A01:111:F400::15", ("2a01:111:f400::15", None)),
        ("[2a01:111:f400::15]:443", ("2a01:111:f400::15", 443)),
        ("[2a01:111:f400::15]", ("2a01:111:f400::15", None)),
        ("198.51.100.0/24", ("198.51.100.0", None)),
        ("2001:db8::/32", ("2001:db8::", None)),
        ("fe80::1%eth0", ("fe80::1", None)),
        ("203.0.113.9, 10.0.0.1", ("203.0.113.9", None)),
        ("1.2.3.4:99999", ("1.2.3.4", None)),
    ],
)
def test_split_address(text: str, expected: tuple[str, int | None]) -> None:
    assert split_address(text) == expected


@pytest.mark.parametrize(
    "text", ["", None, "garbage", "n/a", "<IP ADDRESS>", "1.2.3", "01.2.3.4", "256.1.1.1", "::g"]
)
def test_garbage_addresses_are_none(text: str | None) -> None:
    assert split_address(text) is None


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("81.2.69.160", IpScope.PUBLIC),
        ("10.1.2.3", IpScope.PRIVATE),
        ("172.16.0.1", IpScope.PRIVATE),
        ("172.32.0.1", IpScope.PUBLIC),
        ("192.168.1.1", IpScope.PRIVATE),
        ("100.64.0.1", IpScope.PRIVATE),
        ("127.0.0.1", IpScope.LOOPBACK),
        ("169.254.10.10", IpScope.LINK_LOCAL),
        ("169.254.169.254", IpScope.AZURE_INTERNAL),
        ("168.63.129.16", IpScope.AZURE_INTERNAL),
        ("0.0.0.1", IpScope.RESERVED),
        ("224.0.0.1", IpScope.RESERVED),
        ("::1", IpScope.LOOPBACK),
        ("fe80::1", IpScope.LINK_LOCAL),
        ("fd00::1", IpScope.PRIVATE),
        ("::ffff:10.0.0.1", IpScope.PRIVATE),
        ("2a01:111:f400::15", IpScope.PUBLIC),
    ],
)
def test_classify(ip: str, scope: IpScope) -> None:
    assert classify(ip) is scope


def test_country_names() -> None:
    assert country_name("GB") == "United Kingdom"
    assert country_name("de") == "Germany"
    assert country_name("TW") == "Taiwan"
    assert country_name("ZZ") is None
    assert country_name(None) is None


@pytest.fixture
def databases(tmp_path: Path) -> Path:
    """A folder with a flat-schema IPv4 city file, a nested-schema IPv6 file and an ASN file."""
    folder = tmp_path / "geoip"
    folder.mkdir()
    flat = MMDBWriter(ip_version=4, database_type="dbip-city-lite", languages=["en"])
    flat.insert_network(
        IPSet(["81.2.69.0/24"]),
        {
            "country_code": "GB",
            "city": "London",
            "state1": "England",
            "latitude": 51.5,
            "longitude": -0.09,
        },
    )
    flat.to_db_file(str(folder / "city-ipv4.mmdb"))
    nested = MMDBWriter(ip_version=6, database_type="GeoLite2-City", languages=["en"])
    nested.insert_network(
        IPSet(["2a01:111::/32"]),
        {
            "country": {"iso_code": "IE", "names": {"en": "Ireland"}},
            "city": {"names": {"en": "Dublin"}},
            "subdivisions": [{"names": {"en": "Leinster"}}],
            "location": {"latitude": 53.3, "longitude": -6.2},
        },
    )
    nested.to_db_file(str(folder / "city-ipv6.mmdb"))
    asn = MMDBWriter(ip_version=4, database_type="asn")
    asn.insert_network(IPSet(["81.2.69.0/24"]), {"autonomous_system_organization": "Example ISP"})
    asn.to_db_file(str(folder / "zz-asn.mmdb"))
    return folder


def test_lookups_merge_flat_nested_and_asn_databases(databases: Path) -> None:
    geo = open_geoip(geoip_paths(databases, None))
    assert geo.locate("81.2.69.160") == GeoLocation(
        country_code="GB",
        country_name="United Kingdom",
        region="England",
        city="London",
        latitude=51.5,
        longitude=-0.09,
        organization="Example ISP",
    )
    assert geo.locate("2a01:111::5") == GeoLocation(
        country_code="IE",
        country_name="Ireland",
        region="Leinster",
        city="Dublin",
        latitude=53.3,
        longitude=-6.2,
    )
    assert geo.locate("8.8.8.8") is None
    assert [info.database_type for info in geo.info] == ["dbip-city-lite", "GeoLite2-City", "asn"]


def test_lookups_are_cached_per_instance(databases: Path) -> None:
    geo = open_geoip(geoip_paths(databases, None))
    first = geo.locate("81.2.69.160")
    assert geo.locate("81.2.69.160") is first


def test_no_database_locates_nothing() -> None:
    assert GeoIP().locate("81.2.69.160") is None


def test_paths_from_setting_environment_and_data_dir(
    databases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(GEOIP_ENV, raising=False)
    assert geoip_paths(None, None) == []
    assert geoip_paths(None, tmp_path) == sorted(databases.glob("*.mmdb"))
    assert geoip_paths(None, tmp_path / "elsewhere") == []
    single = databases / "zz-asn.mmdb"
    monkeypatch.setenv(GEOIP_ENV, str(single))
    assert geoip_paths(None, tmp_path) == [single]
    assert geoip_paths(str(databases / "city-ipv4.mmdb"), tmp_path) == [
        databases / "city-ipv4.mmdb"
    ]


def test_missing_or_broken_databases_are_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="does not exist") as flag:
        geoip_paths(tmp_path / "nope.mmdb", None)
    assert flag.value.hint.startswith("point --geoip at ")
    assert "leave it out to use HUBSIGHT_GEOIP, else <data dir>/geoip" in flag.value.hint
    # From the environment (all `hubsight run` reads, it has no --geoip): the hint names that.
    monkeypatch.setenv(GEOIP_ENV, str(tmp_path / "gone.mmdb"))
    with pytest.raises(ConfigError, match=r"gone\.mmdb does not exist") as env:
        geoip_paths(None, tmp_path)
    assert env.value.hint.startswith("point HUBSIGHT_GEOIP at ")
    assert "--geoip" not in env.value.hint
    assert "unset it to use <data dir>/geoip" in env.value.hint
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"not a database")
    with pytest.raises(ConfigError, match="cannot read GeoIP database"):
        open_geoip([broken])


def test_reader_rejects_ipv6_in_ipv4_file_without_failing_lookup(databases: Path) -> None:
    reader = maxminddb.open_database(str(databases / "city-ipv4.mmdb"))
    with pytest.raises(ValueError, match="IPv6"):
        reader.get("2a01:111::5")
    assert GeoIP(databases=[reader]).locate("2a01:111::5") is None


def test_address_fields_are_read_once_per_distinct_text(databases: Path) -> None:
    geo = open_geoip(geoip_paths(databases, None))
    first = geo.source("81.2.69.160:4431")
    assert first is not None
    assert (first.ip, first.port, first.scope) == ("81.2.69.160", 4431, IpScope.PUBLIC)
    assert first.location is not None
    assert first.location.city == "London"
    assert geo.source("81.2.69.160:4431") is first
    private = geo.source("10.0.0.1")
    assert private is not None
    assert private.location is None
    assert geo.source("garbage") is None
    assert geo.source("") is None


def test_status_description_names_files_types_and_build_dates(databases: Path) -> None:
    described = describe_geoip(databases, None)
    assert [(Path(d["path"]).name, d["type"]) for d in described] == [
        ("city-ipv4.mmdb", "dbip-city-lite"),
        ("city-ipv6.mmdb", "GeoLite2-City"),
        ("zz-asn.mmdb", "asn"),
    ]
    built = maxminddb.open_database(str(databases / "zz-asn.mmdb")).metadata().build_epoch
    assert described[2]["built"] == datetime.fromtimestamp(built, tz=UTC).date().isoformat()
