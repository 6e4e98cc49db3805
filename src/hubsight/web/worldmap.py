"""A world map of sign-ins by country, rendered on the server as inline SVG.

An air-gapped SOC has no map tiles, so the country outlines ship with the package:
``worldmap.json`` holds Natural Earth's 1:110m admin-0 countries (public domain), projected,
simplified and keyed by ISO 3166-1 alpha-2 by ``scripts/build-worldmap.py``. Countries too small
to see at that scale (Singapore, Malta, Luxembourg...) also carry a dot at their label point.

Each country is filled by its sign-in count on a sequential, logarithmically binned scale;
countries a user's alerts cite are outlined in red, the rest of the user's baseline in ink. The
page's Content-Security-Policy forbids inline styles, so every colour is an SVG presentation
attribute.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import cache
from html import escape
from importlib import resources
from types import MappingProxyType
from typing import Any

import msgspec
import pycountry

# Light to dark blue; five steps stay distinguishable for people with colour-vision deficiency.
PALETTE = ("#cfe1f2", "#9ec4e6", "#679fd2", "#3a76b7", "#1b4f8c")
NO_SIGNINS = "#dde2e8"
# Darker than NO_SIGNINS: a dot sits on the sea, where the land grey would barely show.
NO_SIGNINS_DOT = "#a9b2bd"
BASELINE_STROKE = "#1c2330"
FLAGGED_STROKE = "#b3261e"
SEA = "#eef3f8"
LEGEND_HEIGHT = 40


class Country(msgspec.Struct, frozen=True):
    """One country of the map: its outline as SVG path data and, when tiny, a dot."""

    code: str
    name: str
    d: str = ""
    dot: tuple[float, float] | None = None


class Area(msgspec.Struct, frozen=True):
    """Land that has no ISO code of its own (e.g. N. Cyprus); drawn, never coloured."""

    name: str
    d: str


class WorldMap(msgspec.Struct, frozen=True):
    """The vendored map: viewBox size, the globe's outline, countries and uncoded land."""

    source: str
    width: int
    height: int
    sphere: str
    countries: tuple[Country, ...]
    land: tuple[Area, ...]


@cache
def world() -> WorldMap:
    """The map shipped with the package (read once per process)."""
    data = resources.files("hubsight.web").joinpath("worldmap.json").read_bytes()
    return msgspec.json.decode(data, type=WorldMap)


@cache
def _by_code() -> Mapping[str, Country]:
    # Read-only, as it is shared by every request of the process.
    return MappingProxyType({c.code: c for c in world().countries})


def on_map(code: str) -> bool:
    """Whether the map can show ``code`` (an ISO 3166-1 alpha-2 code, any case)."""
    return code.upper() in _by_code()


def country_name(code: str) -> str:
    """The country's common English name, or the code when unknown."""
    upper = code.upper()
    country = pycountry.countries.get(alpha_2=upper) if len(code) == 2 else None
    if country is not None:
        return str(getattr(country, "common_name", None) or country.name)
    shape = _by_code().get(upper)
    return shape.name if shape is not None else code


def cited_countries(
    recent_signins: Iterable[Mapping[str, Any]], alerts: Iterable[Mapping[str, Any]]
) -> set[str]:
    """Countries of the recent sign-ins that an alert or notable cites as evidence."""
    cited = [ref for alert in alerts for ref in alert.get("evidence", ())]
    return {
        str(s["country"]).upper()
        for s in recent_signins
        if s.get("country") and s.get("evidence") in cited
    }


def bins(biggest: int) -> list[tuple[int, int, str]]:
    """The colour scale for counts 1..``biggest``: (low, high, colour) per bin.

    Bin edges grow geometrically, so one country with thousands of sign-ins does not wash the
    others out into the lightest colour.
    """
    if biggest < 1:
        return []
    steps = len(PALETTE)
    highs = sorted({max(1, round(biggest ** (i / steps))) for i in range(1, steps + 1)})
    last = len(highs) - 1
    shades = [
        PALETTE[round(j * (steps - 1) / last)] if last else PALETTE[-2] for j in range(len(highs))
    ]
    lows = [1, *(h + 1 for h in highs[:-1])]
    return list(zip(lows, highs, shades, strict=True))


def _colour(count: int, scale: Sequence[tuple[int, int, str]]) -> str:
    return next((shade for _, high, shade in scale if count <= high), NO_SIGNINS)


def world_svg(counts: Mapping[str, int], flagged: Collection[str] = ()) -> str:
    """The map as an inline SVG element: countries filled by sign-ins, flagged ones outlined."""
    totals: dict[str, int] = {}
    for code, count in counts.items():
        totals[code.upper()] = totals.get(code.upper(), 0) + count
    cited = {c.upper() for c in flagged}
    scale = bins(max(totals.values(), default=0))
    shapes = world()

    def drawn(country: Country) -> tuple[bool, bool]:
        # Countries with sign-ins go on top so their outlines are not covered by neighbours.
        count = totals.get(country.code, 0)
        return (country.code in cited, count > 0)

    ordered = sorted(shapes.countries, key=drawn)
    paths = [_path(c, totals.get(c.code, 0), c.code in cited, scale) for c in ordered if c.d]
    dots = [
        _dot(c, c.dot, totals.get(c.code, 0), c.code in cited, scale)
        for c in ordered
        if c.dot is not None
    ]
    land = "".join(f'<path d="{a.d}"><title>{escape(a.name)}</title></path>' for a in shapes.land)
    height = shapes.height + LEGEND_HEIGHT
    return (
        f'<svg class="worldmap" viewBox="0 0 {shapes.width} {height}" role="img" '
        'aria-label="Sign-ins by country" xmlns="http://www.w3.org/2000/svg">'
        f'<path class="sea" d="{shapes.sphere}" fill="{SEA}"/>'
        f'<g class="countries" fill="{NO_SIGNINS}" stroke="#fff" stroke-width=".5" '
        f'stroke-linejoin="round">{land}{"".join(paths)}</g>'
        f'<g class="dots" fill="{NO_SIGNINS_DOT}" stroke="#fff" stroke-width=".5">'
        f"{''.join(dots)}</g>"
        f"{_legend(scale, shapes.height)}</svg>"
    )


def _tooltip(country: Country, count: int, flagged: bool) -> str:
    name = f"{country_name(country.code)} ({country.code})"
    if count == 0:
        return escape(f"{name}: no sign-ins")
    noun = "sign-in" if count == 1 else "sign-ins"
    role = "new or cited by an alert" if flagged else "in the user's baseline"
    return escape(f"{name}: {count} {noun} · {role}")


def _marks(shape: str, count: int, flagged: bool, scale: Sequence[tuple[int, int, str]]) -> str:
    """The class, count and colours of a country's path or dot, as attributes."""
    if count == 0:
        return f' class="{shape}"'
    stroke = FLAGGED_STROKE if flagged else BASELINE_STROKE
    width = "1.6" if flagged else ".7"
    kind = "flagged" if flagged else "baseline"
    return (
        f' class="{shape} {kind}" data-count="{count}" fill="{_colour(count, scale)}"'
        f' stroke="{stroke}" stroke-width="{width}"'
    )


def _path(
    country: Country, count: int, flagged: bool, scale: Sequence[tuple[int, int, str]]
) -> str:
    return (
        f'<path{_marks("country", count, flagged, scale)} data-country="{country.code}" '
        f'd="{country.d}">'
        f"<title>{_tooltip(country, count, flagged)}</title></path>"
    )


def _dot(
    country: Country,
    at: tuple[float, float],
    count: int,
    flagged: bool,
    scale: Sequence[tuple[int, int, str]],
) -> str:
    x, y = at
    # A dot without sign-ins stays small so island groups do not clutter the map.
    radius = 4 if count else 1.8
    return (
        f'<circle{_marks("dot", count, flagged, scale)} data-country="{country.code}" '
        f'cx="{x:g}" cy="{y:g}" r="{radius:g}"><title>{_tooltip(country, count, flagged)}</title>'
        "</circle>"
    )


def _legend(scale: Sequence[tuple[int, int, str]], top: int) -> str:
    """Swatches of the colour scale, the two outlines and the dot, in one row under the map."""
    y = top + 14
    keys = [(f'fill="{NO_SIGNINS}" stroke="#fff"', "none")]
    keys += [
        (f'fill="{shade}" stroke="#fff"', str(low) if low == high else f"{low}–{high}")
        for low, high, shade in scale
    ]
    keys += [
        (f'fill="{PALETTE[1]}" stroke="{BASELINE_STROKE}"', "baseline country"),
        (
            f'fill="{PALETTE[1]}" stroke="{FLAGGED_STROKE}" stroke-width="2"',
            "new or cited by an alert",
        ),
    ]
    parts = [f'<text x="0" y="{y + 13}">Sign-ins</text>']
    x = 76
    for attributes, label in keys:
        parts.append(
            f'<rect x="{x}" y="{y}" width="20" height="14" {attributes}/>'
            f'<text x="{x + 26}" y="{y + 13}">{escape(label)}</text>'
        )
        # About 8.5 units a character at this font size, and a gap before the next key.
        x += 44 + round(8.5 * len(label))
    parts.append(
        f'<circle cx="{x + 8}" cy="{y + 7}" r="5" fill="{PALETTE[1]}" stroke="{BASELINE_STROKE}"/>'
        f'<text x="{x + 20}" y="{y + 13}">small country</text>'
    )
    return (
        '<g class="legend" font-size="16" font-family="system-ui, sans-serif" fill="#4a5361">'
        f"{''.join(parts)}</g>"
    )
