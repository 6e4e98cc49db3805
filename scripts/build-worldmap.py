#!/usr/bin/env python3
"""Build the console's vendored world map from Natural Earth's admin-0 countries (public domain).

    scripts/build-worldmap.py COUNTRIES_110M [--points COUNTRIES_50M] [-o OUT]

COUNTRIES_110M is ``geojson/ne_110m_admin_0_countries.geojson`` and COUNTRIES_50M (optional, for
the countries too small for the 1:110m set, e.g. Singapore or Malta) is
``geojson/ne_50m_admin_0_countries.geojson``, both from the GitHub repository
nvkelso/natural-earth-vector (Natural Earth 5.x: the files must carry ISO_A2_EH and LABEL_X/Y).
The output, ``src/hubsight/web/worldmap.json`` by default, holds each country's outline as SVG
path data in the Natural Earth projection, keyed by ISO 3166-1 alpha-2, and a label point for
countries too small to see. The console reads it at run time; nothing is fetched then.

Only the standard library is used, so the script runs anywhere Python does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

WIDTH = 1000
# Rounded to whole viewBox units (a thousandth of the map's width, about 40 km at the equator),
# then simplified with this Douglas-Peucker tolerance in the same units.
TOLERANCE = 0.6
# A country whose outline fits in a box this small (viewBox units) also gets a dot: at a
# typical 900-pixel-wide map it would be three pixels or less.
TINY = 4.0
# Islands and exclaves smaller than this (square viewBox units) are dropped, unless they are all
# there is of the country: at this scale they are specks that only add bytes.
SPECK = 1.5
DEFAULT_OUT = Path(__file__).parents[1] / "src/hubsight/web/worldmap.json"
SOURCE = (
    "Natural Earth 1:110m (and 1:50m label points) admin-0 countries, public domain, "
    "naturalearthdata.com; built by scripts/build-worldmap.py"
)

Point = tuple[float, float]


def natural_earth(lon: float, lat: float) -> Point:
    """The Natural Earth projection (Šavrič, Patterson and Jenny, 2011) of a point in degrees."""
    lam, phi = math.radians(lon), math.radians(lat)
    p2 = phi * phi
    p4 = p2 * p2
    x = lam * (0.8707 - 0.131979 * p2 + p4 * (-0.013791 + p4 * (0.003971 * p2 - 0.001529 * p4)))
    y = phi * (1.007226 + p2 * (0.015085 + p4 * (-0.044475 + 0.028874 * p2 - 0.005916 * p4)))
    return x, y


_HALF_W, _HALF_H = natural_earth(180, 0)[0], natural_earth(0, 90)[1]
SCALE = WIDTH / (2 * _HALF_W)
HEIGHT = math.ceil(2 * _HALF_H * SCALE)


def project(lon: float, lat: float) -> Point:
    """Viewbox coordinates (y down) of a point in degrees."""
    x, y = natural_earth(lon, lat)
    return (x + _HALF_W) * SCALE, (_HALF_H - y) * SCALE


def simplify(points: Sequence[Point], tolerance: float) -> list[Point]:
    """Douglas-Peucker on an open polyline, iterative so long rings do not recurse deeply."""
    if len(points) < 3:
        return list(points)
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        (ax, ay), (bx, by) = points[first], points[last]
        dx, dy = bx - ax, by - ay
        length = math.hypot(dx, dy)
        worst, index = -1.0, first
        for i in range(first + 1, last):
            px, py = points[i]
            if length == 0:
                distance = math.hypot(px - ax, py - ay)
            else:
                distance = abs(dy * (px - ax) - dx * (py - ay)) / length
            if distance > worst:
                worst, index = distance, i
        if worst > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, kept in zip(points, keep, strict=True) if kept]


def ring_points(ring: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """A GeoJSON ring projected, simplified and rounded, without repeats or the closing point."""
    projected = [project(lon, lat) for lon, lat, *_ in ring]
    # Split the closed ring at its farthest point so both halves keep their ends.
    far = max(range(len(projected)), key=lambda i: math.dist(projected[0], projected[i]))
    halves = simplify(projected[: far + 1], TOLERANCE) + simplify(projected[far:], TOLERANCE)[1:]
    rounded: list[tuple[int, int]] = []
    for x, y in halves:
        point = (round(x), round(y))
        if not rounded or rounded[-1] != point:
            rounded.append(point)
    if len(rounded) > 1 and rounded[0] == rounded[-1]:
        rounded.pop()
    return rounded


def area(points: Sequence[tuple[int, int]]) -> float:
    """The unsigned area of a ring (shoelace)."""
    total = 0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def path_data(rings: Iterable[Sequence[tuple[int, int]]]) -> str:
    """SVG path data with relative moves, the shortest form for integer coordinates."""
    parts: list[str] = []
    cx, cy = 0, 0
    for ring in rings:
        x, y = ring[0]
        parts.append(f"{'M' if not parts else 'm'}{_pair(x - cx, y - cy)}")
        steps = [_pair(bx - ax, by - ay) for (ax, ay), (bx, by) in itertools.pairwise(ring)]
        parts.append("l" + _join(steps) + "z")
        # After "z" the current point is the ring's start.
        cx, cy = x, y
    return "".join(parts)


def _pair(dx: int, dy: int) -> str:
    return f"{dx}{'' if dy < 0 else ' '}{dy}"


def _join(pairs: list[str]) -> str:
    # A minus sign separates numbers by itself.
    return "".join(p if i == 0 or p.startswith("-") else " " + p for i, p in enumerate(pairs))


def polygons(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    """The polygons of a Polygon or MultiPolygon geometry."""
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["coordinates"])
    raise SystemExit(f"unexpected geometry type {geometry['type']!r}: is this an admin-0 file?")


def code_of(properties: dict[str, Any]) -> str | None:
    """The feature's ISO 3166-1 alpha-2 code, or None for areas without one (N. Cyprus)."""
    if "ISO_A2_EH" not in properties:
        raise SystemExit(
            "the file has no ISO_A2_EH field (France and Norway would be lost as -99): "
            "use Natural Earth 5.x from nvkelso/natural-earth-vector"
        )
    code = str(properties["ISO_A2_EH"])
    return code if len(code) == 2 and code.isalpha() else None


def shapes(features: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Countries with a code (path, and a dot when tiny) and uncoded land areas."""
    countries: list[dict[str, Any]] = []
    land: list[dict[str, Any]] = []
    for feature in features:
        props = feature["properties"]
        rings = [
            points
            for polygon in polygons(feature["geometry"])
            for ring in polygon
            if len(points := ring_points(ring)) >= 3
        ]
        big = [r for r in rings if area(r) >= SPECK] or rings
        entry: dict[str, Any] = {"name": props["NAME"], "d": path_data(big)}
        code = code_of(props)
        if code is None:
            land.append(entry)
            continue
        xs = [x for ring in big for x, _ in ring]
        ys = [y for ring in big for _, y in ring]
        if max(xs) - min(xs) <= TINY and max(ys) - min(ys) <= TINY:
            entry["dot"] = _label_point(props)
        countries.append({"code": code, **entry})
    return countries, land


def _label_point(props: dict[str, Any]) -> list[float]:
    x, y = project(float(props["LABEL_X"]), float(props["LABEL_Y"]))
    return [round(x, 1), round(y, 1)]


def dots(features: Iterable[dict[str, Any]], known: set[str]) -> list[dict[str, Any]]:
    """Countries of the finer file missing from the map: a dot at their label point."""
    found = []
    for feature in features:
        props = feature["properties"]
        code = code_of(props)
        if code is None or code in known:
            continue
        known.add(code)
        found.append({"code": code, "name": props["NAME"], "dot": _label_point(props)})
    return found


def sphere() -> str:
    """The outline of the whole projected globe, drawn as the sea."""
    east = [project(180, lat) for lat in range(90, -91, -5)]
    west = [project(-180, lat) for lat in range(-90, 91, 5)]
    return path_data([[(round(x), round(y)) for x, y in east + west]])


def build(countries_file: Path, points_file: Path | None) -> dict[str, Any]:
    """The map document written to worldmap.json."""
    countries, land = shapes(json.loads(countries_file.read_text(encoding="utf-8"))["features"])
    known = {c["code"] for c in countries}
    if len(known) != len(countries):
        raise SystemExit("two features share an ISO_A2_EH code: merge them before building")
    if points_file is not None:
        extra = json.loads(points_file.read_text(encoding="utf-8"))["features"]
        countries += dots(extra, known)
    return {
        "source": SOURCE,
        "width": WIDTH,
        "height": HEIGHT,
        "sphere": sphere(),
        "countries": sorted(countries, key=lambda c: c["code"]),
        "land": sorted(land, key=lambda c: c["name"]),
    }


def main() -> None:
    """Read the Natural Earth files, write the map."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("countries", type=Path, help="ne_110m_admin_0_countries.geojson")
    parser.add_argument("--points", type=Path, help="ne_50m_admin_0_countries.geojson")
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    document = build(args.countries, args.points)
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    dotted = sum(1 for c in document["countries"] if "dot" in c)
    print(
        f"{args.out}: {len(text.encode()):,} bytes, {len(document['countries'])} countries "
        f"({dotted} with a dot), {len(document['land'])} uncoded areas"
    )


if __name__ == "__main__":
    main()
