"""Triage and the dashboard in a real Chromium: assigning and unassigning an alert, what a second
account sees, empty charts."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec
import pytest
from playwright.sync_api import Page, Route, expect

from hubsight.parsing.event import Event, LogSet

from tests.browser.harness import ADMIN, ANALYST, Console, sign_in, sign_out

pytestmark = pytest.mark.browser


def test_an_alert_assigned_then_given_back_to_nobody(page: Page, console: Console) -> None:
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/alerts")
    page.locator("#alerts tbody a").first.click()
    form = page.locator("#triage")
    form.locator('select[name="assignee"]').select_option(ANALYST[0])
    form.locator('button[type="submit"]').click()
    expect(page.locator("#assignee")).to_have_text(ANALYST[0])
    # "nobody" takes the alert back: it was sent as "no change" and the alert stayed assigned.
    page.locator('#triage select[name="assignee"]').select_option("")
    page.locator('#triage button[type="submit"]').click()
    expect(page.locator("#history")).to_contain_text(f"assignee: {ANALYST[0]} -> (none)")
    expect(page.locator("#assignee")).to_have_text("—")
    expect(page.locator('#triage select[name="assignee"]')).to_have_value("")
    alert_url = page.url
    sign_out(page)
    sign_in(page, console, ADMIN)
    page.goto(alert_url)
    expect(page.locator("#assignee")).to_have_text("—")
    expect(page.locator("#history li")).to_have_count(2)


def test_an_empty_chart_says_no_data(page: Page, console: Console) -> None:
    # The seeded events are months old: neither dashboard chart has anything in 24 hours.
    sign_in(page, console, ANALYST)
    for heading in ("Authentications (24 h)", "Top countries (24 h)"):
        card = page.locator("section.card", has=page.locator("h2", has_text=heading))
        expect(card.locator(".chart")).to_have_text("No data.")
        expect(card.locator(".echart")).to_have_count(0)


def test_a_second_account_finds_the_alerts_assigned_to_it(page: Page, console: Console) -> None:
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/alerts")
    title = page.locator("#alerts tbody a").first.inner_text()
    page.locator("#alerts tbody a").first.click()
    page.locator('#triage select[name="assignee"]').select_option(ANALYST[0])
    page.locator('#triage button[type="submit"]').click()
    expect(page.locator("#assignee")).to_have_text(ANALYST[0])
    sign_out(page)
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/alerts")
    page.locator('form.filters select[name="assignee"]').select_option(ANALYST[0])
    page.locator('form.filters button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"assignee=ana"))
    expect(page.locator('#alerts tbody a[href^="/alerts/"]')).to_have_text([title])
    page.locator('form.filters select[name="assignee"]').select_option(ADMIN[0])
    page.locator('form.filters button[type="submit"]').click()
    expect(page.locator("#alerts")).to_contain_text("No alerts match.")


def test_a_long_comment_and_title_stay_inside_the_page(page: Page, console: Console) -> None:
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/investigations")
    page.locator('#investigations tbody a[href^="/investigations/"]').first.click()
    form = page.locator("#inv-triage")
    form.locator('input[name="title"]').fill("T" * 300)
    form.locator('textarea[name="comment"]').fill("unbroken" * 1000)
    form.locator('button[type="submit"]').click()
    expect(page.locator("#history")).to_contain_text("unbrokenunbroken")
    # One word of 8,000 characters made the whole page ~80,000 pixels wide.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400  # the viewport
    page.goto(console.url + "/investigations")
    expect(page.locator("#investigations")).to_contain_text("TTTT")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    # The audit trail records the comment too.
    console.users.create(*ADMIN, "admin")
    sign_out(page)
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/settings/audit")
    expect(page.locator("#audit")).to_contain_text("unbrokenunbroken")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400


ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def test_triage_pages_show_every_time_in_the_viewers_zone(page: Page, console: Console) -> None:
    # Evidence rows were in the viewer's zone, the alert's events, history and the alerts list
    # in raw UTC ISO beside them: two zones on one page, unmarked.
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/alerts")
    expect(page.locator("#alerts tbody time")).to_have_count(1)
    assert not ISO.search(page.locator("#alerts").inner_text())
    page.locator('#alerts tbody a[href^="/alerts/"]').first.click()
    page.fill('#triage textarea[name="comment"]', "checked")
    page.locator('#triage button[type="submit"]').click()
    expect(page.locator("#history")).to_contain_text("checked")
    for part in ("dl.facts", "#history", "#evidence"):
        assert not ISO.search(page.locator(part).inner_text()), part
    stamp = page.locator("dl.facts time").first
    assert ISO.match(stamp.get_attribute("title") or "")  # the exact time stays on hover


def test_an_export_says_it_is_running_until_its_file_comes(page: Page, console: Console) -> None:
    # A 30-day export took 25 s on the demo data with nothing on screen; a second click
    # started it again.
    held: list[Route] = []
    page.route("**/api/v1/search/export*", lambda route: held.append(route))
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/search")
    page.fill("#leql", "where(user=adele.vance@contoso.com)")
    button = page.locator('button.export[data-format="csv"]')
    button.click()
    expect(button).to_have_text("Exporting…")
    expect(button).to_be_disabled()
    page.wait_for_timeout(200)
    assert len(held) == 1
    with page.expect_download() as download:
        held[0].continue_()
    assert download.value.suggested_filename == "search.csv"
    expect(button).to_have_text("Export CSV")
    expect(button).to_be_enabled()


def test_log_search_rows_with_long_values_stay_inside_the_page(
    page: Page, console: Console
) -> None:
    # Azure resource ids are long and unbroken: their pills pushed every search past the page.
    long_id = "/SUBSCRIPTIONS/" + "E79B4D45-186A-474F-ABFB-24112DED9692/" * 12 + "X"
    event = Event(
        timestamp=datetime.now(UTC),
        log_set=LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY,
        log_name="qa",
        raw=msgspec.Raw(b"{}"),
        source_topic="t",
        source_partition=0,
        source_offset=0,
        record_index=0,
        resource_id=long_id,
        operation="x",
    )
    console.service.store.write([event])
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/search")
    page.fill("#leql", "where(log_name=qa)")
    page.click('#search button[type="submit"]')
    expect(page.locator("#rows .pill", has_text="resource_id=")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
