"""An analyst's whole journey in Chromium, one screenshot per step into test-artifacts/.

Dashboard -> investigation -> evidence -> Log Search pivot -> entity page -> triage and close.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import ANALYST, Console, shot, sign_in

pytestmark = pytest.mark.browser


def test_from_alert_to_answer(page: Page, console: Console) -> None:
    sign_in(page, console, ANALYST)
    shot(page, "journey-1-dashboard")
    page.get_by_role("link", name="Investigations").click()
    rows = page.locator("#investigations tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("adele.vance@contoso.com")
    rows.first.locator("a").first.click()
    expect(page.locator("#investigation h1")).to_contain_text("adele.vance@contoso.com")
    expect(page.locator("#timeline tr.tl-alert")).to_have_count(1)
    expect(page.locator("#timeline tr.tl-evidence")).to_have_count(11)
    shot(page, "journey-2-investigation")

    page.locator("#inv-alerts tbody a").first.click()
    expect(page.locator("#alert h1")).to_be_visible()
    # Evidence rows say what each event was; the raw record opens below its row.
    first = page.locator("#evidence tr.evidence").first
    expect(first.locator("td").nth(1)).to_have_text("adele.vance@contoso.com")
    expect(first.locator("td").nth(4)).not_to_be_empty()
    first.get_by_role("button", name="Raw record").click()
    expect(page.locator("#evidence tr.sub pre").first).to_contain_text('"raw"')
    shot(page, "journey-3-evidence")
    alert_url = page.url

    page.locator("#alert-search").click()
    expect(page).to_have_url(re.compile(r"/search\?q=where"))
    expect(page.locator("#leql")).to_have_value('where(user="adele.vance@contoso.com")')
    expect(page.locator('select[name="last"]')).to_have_value("")
    # The scope is visible: the alert's log set ticked, each with its count of events.
    ticked = page.locator('input[name="log_sets"]:checked')
    expect(ticked).to_have_count(1)
    expect(ticked).to_have_value("Ingress Authentication")
    expect(page.locator("#log-sets")).to_contain_text("Ingress Authentication 11")
    events = page.locator("#rows tr.event")
    expect(events).to_have_count(11)
    shot(page, "journey-4-log-search")

    page.goto(alert_url)
    page.locator("#alert dd a[href^='/users/']").click()
    expect(page.locator("h1")).to_have_text("adele.vance@contoso.com")
    # The seeded events are older than the default 30 days.
    page.fill('input[name="days"]', "3650")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#tops")).to_contain_text("203.0.113.10")
    expect(page.locator("#why-no-notable")).to_contain_text("still learning")
    shot(page, "journey-5-user")
    page.locator("#tops a", has_text="203.0.113.10").click()
    page.goto(page.url + "?days=3650")
    expect(page.locator("#address-users")).to_contain_text("adele.vance@contoso.com")
    expect(page.locator("#address")).to_contain_text("Germany")
    shot(page, "journey-5-address")
    page.goto(alert_url)
    page.locator("#alert a[href^='/investigations/']").click()

    form = page.locator("#inv-triage")
    form.locator('select[name="assignee"]').select_option(ANALYST[0])
    form.locator('select[name="status"]').select_option("closed")
    form.locator('select[name="disposition"]').select_option("malicious")
    form.locator('textarea[name="comment"]').fill("password reset, sessions revoked")
    form.locator('button[type="submit"]').click()
    expect(page.locator("#status")).to_have_text("closed · malicious")
    expect(page.locator("#assignee")).to_have_text(ANALYST[0])
    expect(page.locator("#history")).to_contain_text("password reset, sessions revoked")
    expect(page.locator("#inv-alerts tbody")).to_contain_text("closed · malicious")
    shot(page, "journey-6-closed")
    page.goto(console.url + "/investigations?status=open")
    expect(page.locator("#investigations")).to_contain_text("Nothing matches these filters.")
