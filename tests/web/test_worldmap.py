"""The sign-ins world map: vendored Natural Earth shapes, colour scale, flags, dots, tooltips."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources
from typing import Any

import pytest

from hubsight.web.worldmap import (
    FLAGGED_STROKE,
    NO_SIGNINS,
    PALETTE,
    bins,
    cited_countries,
    country_name,
    on_map,
    world,
    world_svg,
)

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    """The SVG as a tree; it fails the test when the markup is not well-formed XML."""
    return ET.fromstring(svg)  # noqa: S314 - markup this process generated, not input


def _elements(svg: str) -> dict[str, list[ET.Element]]:
    """The SVG's country shapes and dots, by country code (a tiny country has both)."""
    root = _parse(svg)
    found: dict[str, list[ET.Element]] = {}
    for element in root.iter():
        code = element.get("data-country")
        if code is not None:
            found.setdefault(code, []).append(element)
    return found


def _title(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None
    return title.text or ""


def test_the_vendored_map_is_natural_earth_keyed_by_alpha2() -> None:
    shipped = world()
    codes = {c.code for c in shipped.countries}
    # France and Norway are "-99" in Natural Earth's ISO_A2; the build keys by ISO_A2_EH.
    assert {"FR", "NO", "DE", "US", "CN", "BR", "AU", "ZA", "XK", "SG", "MT"} <= codes
    assert len(codes) == len(shipped.countries) > 230
    assert all(len(c) == 2 and c.isupper() for c in codes)
    assert "Natural Earth" in shipped.source
    size = len(resources.files("hubsight.web").joinpath("worldmap.json").read_bytes())
    assert size < 120_000


def test_a_country_is_filled_by_its_count_on_the_scale() -> None:
    svg = world_svg({"DE": 40, "FR": 7, "US": 1})
    shapes = _elements(svg)
    scale = bins(40)
    assert scale == [
        (1, 2, PALETTE[0]),
        (3, 4, PALETTE[1]),
        (5, 9, PALETTE[2]),
        (10, 19, PALETTE[3]),
        (20, 40, PALETTE[4]),
    ]
    (germany,) = shapes["DE"]
    assert germany.tag == f"{SVG}path"
    assert germany.get("fill") == PALETTE[4]
    assert germany.get("data-count") == "40"
    assert germany.get("class") == "country baseline"
    assert germany.get("d", "").startswith("M")
    assert _title(germany) == "Germany (DE): 40 sign-ins · in the user's baseline"
    assert shapes["FR"][0].get("fill") == PALETTE[2]
    assert shapes["US"][0].get("fill") == PALETTE[0]
    assert _title(shapes["US"][0]) == "United States (US): 1 sign-in · in the user's baseline"
    # A country without sign-ins takes the group's grey and still says what it is.
    (spain,) = shapes["ES"]
    assert spain.get("fill") is None
    assert _title(spain) == "Spain (ES): no sign-ins"
    assert f'fill="{NO_SIGNINS}"' in svg


def test_flagged_countries_are_outlined_and_said_so() -> None:
    shapes = _elements(world_svg({"DE": 12, "NG": 1}, flagged={"ng"}))
    (nigeria,) = shapes["NG"]
    assert nigeria.get("class") == "country flagged"
    assert nigeria.get("stroke") == FLAGGED_STROKE
    assert _title(nigeria) == "Nigeria (NG): 1 sign-in · new or cited by an alert"
    assert shapes["DE"][0].get("class") == "country baseline"
    assert shapes["DE"][0].get("stroke") != FLAGGED_STROKE


def test_small_countries_get_a_dot() -> None:
    shapes = _elements(world_svg({"SG": 3, "LU": 2}))
    # Singapore is not in the 1:110m set at all: a dot is all it has.
    (singapore,) = shapes["SG"]
    assert singapore.tag == f"{SVG}circle"
    assert singapore.get("r") == "4"
    assert singapore.get("fill") == bins(3)[-1][2]
    assert _title(singapore) == "Singapore (SG): 3 sign-ins · in the user's baseline"
    # Luxembourg has an outline, but one too small to see, so a dot too.
    assert sorted(e.tag.removeprefix(SVG) for e in shapes["LU"]) == ["circle", "path"]
    assert all(e.get("data-count") == "2" for e in shapes["LU"])
    # A small country without sign-ins keeps a smaller, uncoloured dot.
    (malta,) = shapes["MT"]
    assert malta.get("r") == "1.8"
    assert malta.get("fill") is None


def test_unknown_codes_are_left_out_and_codes_are_case_insensitive() -> None:
    shapes = _elements(world_svg({"ZZ": 5, "de": 2, "DE": 1, "": 4}))
    assert "ZZ" not in shapes
    assert shapes["DE"][0].get("data-count") == "3"
    assert not on_map("ZZ")
    assert not on_map("")
    assert on_map("de")


def test_no_sign_ins_draws_a_grey_map_with_an_empty_scale() -> None:
    svg = world_svg({})
    root = _parse(svg)
    assert root.get("viewBox") == f"0 0 {world().width} {world().height + 40}"
    assert "data-count=" not in svg
    assert len(_elements(svg)) == len(world().countries)
    legend_group = root.find(f"{SVG}g[@class='legend']")
    assert legend_group is not None
    legend = "".join(legend_group.itertext())
    assert "none" in legend
    assert "1–" not in legend
    assert bins(0) == []


@pytest.mark.parametrize(
    ("biggest", "expected"),
    [
        (1, [(1, 1, PALETTE[3])]),
        (2, [(1, 1, PALETTE[0]), (2, 2, PALETTE[4])]),
        (3, [(1, 1, PALETTE[0]), (2, 2, PALETTE[2]), (3, 3, PALETTE[4])]),
        (6, [(1, 1, PALETTE[0]), (2, 2, PALETTE[1]), (3, 3, PALETTE[2]), (4, 4, PALETTE[3]),
             (5, 6, PALETTE[4])]),
        (1000, [(1, 4, PALETTE[0]), (5, 16, PALETTE[1]), (17, 63, PALETTE[2]),
                (64, 251, PALETTE[3]), (252, 1000, PALETTE[4])]),
    ],
)  # fmt: skip
def test_bins_grow_geometrically_and_cover_every_count(
    biggest: int, expected: list[tuple[int, int, str]]
) -> None:
    assert bins(biggest) == expected


def test_names_prefer_common_names_and_fall_back_to_the_map() -> None:
    assert country_name("kr") == "South Korea"
    assert country_name("TW") == "Taiwan"
    assert country_name("XK") == "Kosovo"
    assert country_name("ZZ") == "ZZ"


def test_cited_countries_are_those_of_sign_ins_an_alert_names() -> None:
    ref_de = {"log_name": "example", "offset": 1}
    ref_ng = {"log_name": "example", "offset": 2}
    recent: list[dict[str, Any]] = [
        {"country": "DE", "evidence": ref_de},
        {"country": "ng", "evidence": ref_ng},
        {"country": None, "evidence": {"offset": 3}},
    ]
    alerts: list[dict[str, Any]] = [{"evidence": [ref_ng, {"offset": 3}]}, {"evidence": []}]
    assert cited_countries(recent, alerts) == {"NG"}
    assert cited_countries(recent, []) == set()
