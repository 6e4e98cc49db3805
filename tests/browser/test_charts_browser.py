"""Charts in Chromium: axes, tooltips, legend of the top series plus other, brush-to-zoom."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import ANALYST, Console, shot, sign_in, wait_for_chart
from tests.query.dataset import WINDOW, events

pytestmark = pytest.mark.browser


def _search(page: Page, query: str) -> None:
    page.fill("#leql", query)
    page.keyboard.press("Control+Enter")


# The texts ECharts drew on the chart's canvas: axis labels and names, legend, bar labels.
DRAWN = """box => box.chart.getZr().storage.getDisplayList()
    .filter(e => e.style && typeof e.style.text === "string").map(e => e.style.text)"""


def drawn(page: Page, selector: str) -> list[str]:
    """The texts drawn on the chart in ``selector``, once it is drawn."""
    wait_for_chart(page, selector)
    return list(page.locator(selector).evaluate(DRAWN))


def test_axes_tooltips_legend_and_brush(page: Page, console: Console) -> None:
    console.service.store.write(events())
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/search")
    page.locator('select[name="last"]').select_option("")
    page.fill('input[name="from"]', WINDOW[0][:16])
    page.fill('input[name="to"]', WINDOW[1][:16])

    # groupby: bars with a category axis of the values and a value axis named after the count.
    _search(page, "groupby(result)")
    # The first search warms the store up: give it longer.
    expect(page.locator("#chart .echart")).to_have_attribute(
        "aria-label", re.compile("SUCCESS"), timeout=15_000
    )
    texts = drawn(page, "#chart .echart")
    assert {"SUCCESS", "FAILED_MFA", "count", "0"} <= set(texts)
    # Value ticks beyond 0: the axis has a scale, not only its ends.
    assert len([t for t in texts if t.isdigit()]) >= 3
    box = page.locator("#chart .echart").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 30)
    tooltip = page.locator("#chart .echart div").filter(has_text=re.compile(r"● count: \d+"))
    expect(tooltip.last).to_be_visible()

    # groupby + timeslice: stacked bars, 8 series in the legend and the rest as "other".
    _search(page, "groupby(source_ip, result) timeslice(12)")
    stacked = page.locator("#chart .echart")
    expect(stacked).to_have_attribute("aria-label", re.compile(r"other \("))
    texts = drawn(page, "#chart .echart")
    assert any(t.startswith("other (") for t in texts)
    names = page.evaluate(
        "document.querySelector('#chart .echart').chart.getOption().series.map(s => s.name)"
    )
    assert len(names) == 9
    assert names[-1].startswith("other (")
    shot(page, "chart-stacked")

    # Events: a histogram above the list; brushing a range on it narrows the search to it.
    _search(page, "corp")
    histogram = page.locator("#histogram .echart")
    expect(histogram).to_be_visible()
    wait_for_chart(page, "#histogram .echart")
    before = page.input_value('input[name="from"]')
    area = histogram.bounding_box()
    assert area is not None
    y = area["y"] + area["height"] / 2
    page.mouse.move(area["x"] + area["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.6, y, steps=5)
    page.mouse.up()
    expect(page.locator('input[name="from"]')).not_to_have_value(before)
    assert page.input_value('select[name="last"]') == ""
    shot(page, "chart-histogram-zoomed")
