"""A user's sign-ins on the world map, in a real Chromium: shapes, colours, flags, tooltips."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from hubsight.detect.base import numbered
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_baseline import NewCountry
from hubsight.detect.rules.signals import signin
from hubsight.detect.ruleset import build_rule
from hubsight.web.worldmap import FLAGGED_STROKE, PALETTE, bins

from tests.browser.harness import ANALYST, Console, shot, sign_in

pytestmark = pytest.mark.browser

USER = "megan.bowen@contoso.com"
# Sign-ins in the first day are learnt silently; Nigeria two days later is a new country.
PLACES = (
    [("DE", 52.5, 13.4)] * 9 + [("FR", 48.9, 2.4)] * 3 + [("US", 47.6, -122.3), ("SG", 1.3, 103.8)]
)


@pytest.fixture
def traveller(console: Console) -> str:
    """A user with sign-ins from four countries, then a first one from Nigeria (a notable)."""
    events = [
        signin(i * 30, USER, country=code, lat=lat, lon=lon, ip=f"203.0.113.{i + 1}")
        for i, (code, lat, lon) in enumerate(PLACES)
    ]
    events.append(signin(2 * 24 * 60, USER, country="NG", lat=6.45, lon=3.39, ip="102.89.1.1"))
    events = numbered(events)
    engine = DetectionEngine(
        DetectDB.in_dir(console.service.data_dir),
        [build_rule(NewCountry, {})],
        options=EngineOptions(learning=timedelta(days=1)),
    )
    try:
        fired = engine.process(events)
    finally:
        engine.close()
    assert [a.rule_id for a in fired] == ["auth.new_country"]
    return USER


def test_user_page_map_colours_flags_and_names_countries(
    page: Page, console: Console, traveller: str
) -> None:
    sign_in(page, console, ANALYST)
    page.goto(f"{console.url}/users/{quote(traveller)}?days=3650")
    worldmap = page.locator("svg.worldmap")
    expect(worldmap).to_be_visible()
    scale = bins(9)
    germany = worldmap.locator('path[data-country="DE"]')
    expect(germany).to_have_attribute("fill", PALETTE[-1])
    expect(germany).to_have_attribute("class", "country baseline")
    expect(germany.locator("title")).to_have_text(
        "Germany (DE): 9 sign-ins · in the user's baseline"
    )
    france = worldmap.locator('path[data-country="FR"]')
    expect(france).to_have_attribute("fill", next(c for lo, hi, c in scale if lo <= 3 <= hi))
    nigeria = worldmap.locator('path[data-country="NG"]')
    expect(nigeria).to_have_attribute("class", "country flagged")
    expect(nigeria).to_have_attribute("stroke", FLAGGED_STROKE)
    expect(nigeria.locator("title")).to_have_text(
        "Nigeria (NG): 1 sign-in · new or cited by an alert"
    )
    # Singapore is too small for the 1:110m outlines: it is a dot, coloured like the others.
    singapore = worldmap.locator('circle[data-country="SG"]')
    expect(singapore).to_have_class("dot baseline")
    expect(singapore).to_have_attribute("r", "4")
    assert singapore.bounding_box() is not None
    expect(worldmap.locator("[data-count]")).to_have_count(5)
    # Every country is drawn, coloured or not; countries without sign-ins say so on hover.
    assert worldmap.locator("path.country").count() > 170
    expect(worldmap.locator('path[data-country="BR"] title')).to_have_text(
        "Brazil (BR): no sign-ins"
    )
    # The shapes are real: Germany is drawn where Europe is, and larger than Luxembourg.
    box = germany.bounding_box()
    whole = worldmap.bounding_box()
    assert box is not None
    assert whole is not None
    assert 0.5 < (box["x"] - whole["x"]) / whole["width"] < 0.56
    assert box["width"] > 10
    germany.hover()
    expect(worldmap.locator(".legend")).to_contain_text("new or cited by an alert")
    expect(page.locator("#countries")).to_contain_text("Nigeria")
    shot(page, "user-worldmap")
