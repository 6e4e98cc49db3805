"""A world map drawn locally as SVG: coarse land outlines and one circle per country signed in from.

An air-gapped SOC has no map tiles, so the outlines are a few hundred hand-placed (longitude,
latitude) points, accurate to a few degrees: enough to see which continent a sign-in came from.
Circles sit on each country's approximate centre; countries missing from the table are listed
beside the map instead.
"""

from __future__ import annotations

import math
from html import escape

import pycountry

_LAND: tuple[tuple[tuple[float, float], ...], ...] = (
    # North and Central America
    ((-168, 65), (-162, 70), (-140, 70), (-125, 72), (-95, 72), (-80, 73), (-65, 60), (-55, 52),
     (-67, 45), (-70, 42), (-76, 35), (-81, 31), (-80, 25), (-82, 29), (-90, 30), (-97, 27),
     (-97, 21), (-92, 18), (-87, 21), (-88, 15), (-83, 10), (-79, 9), (-82, 8), (-86, 12),
     (-92, 14), (-105, 20), (-110, 24), (-115, 30), (-117, 33), (-121, 35), (-124, 40),
     (-124, 47), (-130, 54), (-140, 60), (-150, 60), (-158, 57), (-165, 60)),
    # South America
    ((-79, 9), (-72, 12), (-62, 10), (-52, 5), (-50, 0), (-44, -2), (-35, -5), (-38, -13),
     (-41, -22), (-48, -26), (-53, -33), (-58, -38), (-62, -41), (-65, -45), (-68, -50),
     (-69, -55), (-74, -52), (-73, -45), (-72, -35), (-71, -25), (-70, -18), (-76, -14),
     (-81, -6), (-80, -1), (-78, 2), (-77, 7)),
    # Europe and Asia
    ((-10, 36), (-9, 43), (-2, 44), (-5, 48), (2, 51), (8, 54), (10, 57), (5, 58), (5, 62),
     (14, 66), (20, 70), (30, 71), (40, 67), (45, 68), (60, 70), (70, 73), (80, 73), (100, 77),
     (112, 74), (130, 71), (140, 72), (160, 70), (170, 70), (180, 68), (180, 65), (170, 60),
     (163, 58), (156, 51), (156, 57), (143, 59), (137, 54), (141, 48), (135, 43), (130, 42),
     (128, 35), (126, 38), (122, 40), (118, 38), (122, 31), (120, 25), (110, 20), (107, 17),
     (109, 12), (105, 9), (100, 13), (100, 4), (104, 1), (100, 3), (98, 8), (97, 16), (92, 21),
     (88, 22), (80, 15), (77, 8), (73, 18), (72, 22), (67, 25), (57, 25), (52, 27), (48, 30),
     (50, 26), (56, 26), (59, 22), (53, 16), (45, 13), (43, 16), (35, 28), (35, 33), (30, 37),
     (27, 40), (24, 38), (22, 37), (19, 41), (16, 38), (12, 44), (14, 46), (8, 44), (3, 43),
     (-2, 37)),
    # Africa
    ((-17, 21), (-17, 15), (-12, 7), (-8, 4), (0, 5), (9, 4), (10, -2), (13, -10), (12, -18),
     (15, -27), (18, -34), (25, -34), (33, -26), (35, -20), (40, -15), (40, -7), (43, 0),
     (51, 11), (44, 11), (38, 18), (33, 28), (32, 31), (20, 31), (10, 34), (10, 37), (-1, 36),
     (-6, 35), (-10, 29)),
    # Australia
    ((114, -22), (122, -18), (130, -12), (137, -12), (142, -11), (146, -19), (153, -25),
     (151, -34), (146, -39), (140, -38), (135, -34), (131, -31), (124, -33), (115, -34),
     (113, -26)),
    # Greenland, Great Britain, Japan, New Zealand, Borneo, Sumatra, Madagascar
    ((-73, 78), (-60, 82), (-30, 83), (-20, 80), (-20, 70), (-40, 65), (-45, 60), (-53, 66),
     (-58, 76)),
    ((-5, 50), (1, 51), (2, 53), (-2, 56), (-3, 58), (-6, 58), (-5, 55), (-3, 54), (-5, 52)),
    ((130, 31), (135, 34), (140, 35), (142, 40), (141, 45), (145, 44), (140, 41), (136, 37),
     (131, 34)),
    ((172, -34), (178, -38), (174, -41), (171, -44), (167, -46), (172, -41)),
    ((109, 2), (117, 7), (119, 1), (116, -4), (110, -3)),
    ((95, 5), (106, -6), (102, -4), (98, 1)),
    ((44, -25), (47, -25), (50, -15), (49, -12), (44, -17)),
)  # fmt: skip

# Approximate centres (latitude, longitude) of the countries sign-ins most often come from.
CENTRES: dict[str, tuple[float, float]] = {
    "US": (39, -98), "CA": (56, -106), "MX": (23, -102), "BR": (-10, -52), "AR": (-34, -64),
    "CL": (-31, -71), "CO": (4, -73), "PE": (-10, -76), "GB": (54, -2), "IE": (53, -8),
    "FR": (46, 2), "DE": (51, 10), "NL": (52, 5), "BE": (50.5, 4.5), "ES": (40, -4),
    "PT": (39.5, -8), "IT": (42.5, 12.5), "CH": (47, 8), "AT": (47.5, 14), "PL": (52, 19),
    "CZ": (50, 15), "SE": (62, 15), "NO": (61, 9), "FI": (64, 26), "DK": (56, 10),
    "RO": (46, 25), "UA": (49, 32), "RU": (60, 90), "TR": (39, 35), "GR": (39, 22),
    "IL": (31, 35), "AE": (24, 54), "SA": (24, 45), "IR": (32, 53), "EG": (27, 30),
    "NG": (9, 8), "ZA": (-29, 24), "KE": (0, 38), "MA": (32, -6), "IN": (22, 79),
    "PK": (30, 70), "CN": (35, 103), "HK": (22.3, 114.2), "TW": (23.7, 121), "KR": (36, 128),
    "KP": (40, 127), "JP": (36, 138), "VN": (16, 107), "TH": (15, 101), "SG": (1.35, 103.8),
    "MY": (4, 102), "ID": (-2, 118), "PH": (12, 122), "AU": (-25, 134), "NZ": (-41, 174),
}  # fmt: skip


def _xy(lon: float, lat: float) -> tuple[float, float]:
    return round(lon + 180, 1), round(90 - lat, 1)


def country_name(code: str) -> str:
    """The country's English name, or the code when unknown."""
    country = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    return country.name if country is not None else code


def world_svg(counts: dict[str, int]) -> str:
    """The map as an inline SVG element, a circle per country sized by its sign-ins."""
    land = "".join(
        '<path d="M{}Z"/>'.format("L".join("{},{}".format(*_xy(*p)) for p in shape))
        for shape in _LAND
    )
    biggest = max(counts.values(), default=1)
    marks = []
    for code, count in sorted(counts.items(), key=lambda item: -item[1]):
        centre = CENTRES.get(code.upper())
        if centre is None:
            continue
        x, y = _xy(centre[1], centre[0])
        radius = round(2 + 6 * math.sqrt(count / biggest), 1)
        label = escape(f"{country_name(code)}: {count} sign-ins")
        marks.append(
            f'<circle class="mark" data-country="{escape(code)}" cx="{x}" cy="{y}" '
            f'r="{radius}"><title>{label}</title></circle>'
        )
    return (
        '<svg class="worldmap" viewBox="0 5 360 145" role="img" '
        'aria-label="Sign-ins by country" xmlns="http://www.w3.org/2000/svg">'
        f'<g class="land">{land}</g><g class="marks">{"".join(marks)}</g></svg>'
    )
