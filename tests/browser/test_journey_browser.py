"""An analyst's whole journey in Chromium, one screenshot per step into test-artifacts/.

Dashboard -> investigation -> evidence -> Log Search pivot -> entity page -> triage and close.
"""

from __future__ import annotations

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
    page.locator("button[data-context]").first.click()
    expect(page.locator("tr.sub pre").first).to_contain_text("adele.vance@contoso.com")
    shot(page, "journey-3-evidence")
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
