"""scripts/build-worldmap.py on small Natural Earth-shaped inputs."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts/build-worldmap.py"


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    """The build script loaded as a module (its file name is not importable)."""
    spec = importlib.util.spec_from_file_location("build_worldmap", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def _feature(props: dict[str, Any], *polygons: list[list[float]]) -> dict[str, Any]:
    label = {"LABEL_X": polygons[0][0][0] + 0.1, "LABEL_Y": polygons[0][0][1] + 0.1}
    geometry = {"type": "MultiPolygon", "coordinates": [[ring] for ring in polygons]}
    return {"type": "Feature", "properties": {**label, **props}, "geometry": geometry}


def _write(path: Path, *features: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path


def _absolute_rings(d: str) -> list[list[tuple[int, int]]]:
    """Decode the script's path data (M/m, l, z with integers) into absolute points."""
    rings: list[list[tuple[int, int]]] = []
    x = y = 0
    for command, numbers in re.findall(r"([Mml])([-\d ]+)", d):
        values = [int(v) for v in re.findall(r"-?\d+", numbers)]
        pairs = list(zip(values[::2], values[1::2], strict=True))
        if command == "M":
            x, y = pairs[0]
            rings.append([(x, y)])
        elif command == "m":
            # After "z" the current point is the previous ring's start.
            x, y = rings[-1][0][0] + pairs[0][0], rings[-1][0][1] + pairs[0][1]
            rings.append([(x, y)])
        else:
            for dx, dy in pairs:
                x, y = x + dx, y + dy
                rings[-1].append((x, y))
    return rings


def test_countries_are_keyed_by_iso_a2_eh_with_dots_for_tiny_ones(
    builder: ModuleType, tmp_path: Path
) -> None:
    countries = _write(
        tmp_path / "110m.geojson",
        _feature(
            {"ISO_A2": "-99", "ISO_A2_EH": "FR", "NAME": "France"},
            _square(-4, 43, 8, 51),
            _square(60.0, 10.0, 60.1, 10.1),  # a speck of an island: dropped
        ),
        _feature(
            {"ISO_A2": "LU", "ISO_A2_EH": "LU", "NAME": "Luxembourg"}, _square(6, 49.5, 6.4, 50)
        ),
        _feature(
            {"ISO_A2": "-99", "ISO_A2_EH": "-99", "NAME": "N. Cyprus"}, _square(33, 35, 34, 35.6)
        ),
    )
    points = _write(
        tmp_path / "50m.geojson",
        _feature({"ISO_A2": "FR", "ISO_A2_EH": "FR", "NAME": "France"}, _square(0, 0, 1, 1)),
        _feature(
            {"ISO_A2": "SG", "ISO_A2_EH": "SG", "NAME": "Singapore"}, _square(103.6, 1.2, 104, 1.5)
        ),
    )
    document = builder.build(countries, points)
    by_code = {c["code"]: c for c in document["countries"]}
    assert sorted(by_code) == ["FR", "LU", "SG"]
    assert [a["name"] for a in document["land"]] == ["N. Cyprus"]
    assert "dot" not in by_code["FR"]
    assert "d" not in by_code["SG"]
    assert by_code["SG"]["dot"] == [round(v, 1) for v in builder.project(103.7, 1.3)]
    assert "dot" in by_code["LU"]
    (france,) = _absolute_rings(by_code["FR"]["d"])
    corners = [(-4, 43), (8, 43), (8, 51), (-4, 51)]
    expected = [tuple(round(v) for v in builder.project(lon, lat)) for lon, lat in corners]
    assert france == expected
    assert document["width"] == 1000
    assert document["height"] == 520


def test_rings_keep_their_shape_within_the_tolerance(builder: ModuleType) -> None:
    # A quarter circle of many points around a square corner, as a coast might be.
    ring = [[10 + 5 * i / 100, 0.0] for i in range(101)] + [[15.0, 5.0], [10.0, 5.0], [10.0, 0.0]]
    points = builder.ring_points(ring)
    assert len(points) == 4
    assert points[0] == tuple(round(v) for v in builder.project(10, 0))


def test_an_old_natural_earth_file_is_refused_with_the_fix(
    builder: ModuleType, tmp_path: Path
) -> None:
    old = _write(
        tmp_path / "old.geojson",
        _feature({"ISO_A2": "-99", "NAME": "France"}, _square(0, 40, 8, 50)),
    )
    with pytest.raises(SystemExit, match=r"ISO_A2_EH.*Natural Earth 5"):
        builder.build(old, None)
