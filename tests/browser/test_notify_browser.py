"""Notification targets in a real Chromium: add, test, edit (secret kept), remove; analyst view.

The SMTP target is a real server on 127.0.0.1 with STARTTLS and a login, trusted through a CA
file; the webhook is a real HTTP server that refuses the credentials.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import ADMIN, ANALYST, Console, shot, sign_in, sign_out
from tests.detect.receivers import http_receiver, make_tls, smtp_server
from tests.support import PLANTED_PASSWORD

pytestmark = pytest.mark.browser


def test_admin_adds_tests_edits_and_removes_targets(
    page: Page, console: Console, tmp_path: Path
) -> None:
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/settings")
    tls = make_tls(tmp_path)
    with smtp_server("starttls", tls=tls, users={"hubsight": PLANTED_PASSWORD}) as (port, box):
        form = page.locator("#target-form")
        form.locator('input[name="name"]').fill("soc-mail")
        form.locator('select[name="kind"]').select_option("smtp")
        expect(form.locator('fieldset[data-kind="webhook"]')).to_be_hidden()
        form.locator('input[name="smtp_host"]').fill("127.0.0.1")
        form.locator('input[name="smtp_port"]').fill(str(port))
        form.locator('select[name="security"]').select_option("starttls")
        form.locator('input[name="sender"]').fill("hubsight@contoso.com")
        form.locator('input[name="recipients"]').fill("soc@contoso.com")
        form.locator('input[name="username"]').fill("hubsight")
        form.locator('input[name="password"]').fill(PLANTED_PASSWORD)
        form.locator('input[name="ca_file"]').fill(str(tls.ca_file))
        form.locator('input[name="severities"][value="Medium"]').check()
        form.get_by_role("button", name="Save target").click()
        row = page.locator('tr[data-target="soc-mail"]')
        expect(row).to_contain_text("password: set")
        expect(row).to_contain_text("Critical, High, Medium")
        assert PLANTED_PASSWORD not in page.content()

        row.get_by_role("button", name="Send test").click()
        expect(row.locator(".test-result")).to_contain_text("delivered in")
        assert [rcpts for rcpts, _ in box.mails] == [["soc@contoso.com"]]

        # Edit: the password field stays empty and the stored password is kept.
        row.get_by_role("button", name="Edit").click()
        expect(page.locator("#target-form-title")).to_have_text("Edit target soc-mail")
        password = form.locator('input[name="password"]')
        assert (password.input_value(), password.get_attribute("placeholder")) == (
            "",
            "set: leave empty to keep",
        )
        form.locator('input[name="recipients"]').fill("soc@contoso.com, ir@contoso.com")
        form.get_by_role("button", name="Save target").click()
        row = page.locator('tr[data-target="soc-mail"]')
        expect(row).to_contain_text("ir@contoso.com")
        row.get_by_role("button", name="Send test").click()
        expect(row.locator(".test-result")).to_contain_text("delivered in")
        assert box.mails[-1][0] == ["soc@contoso.com", "ir@contoso.com"]
        assert box.logins == ["hubsight", "hubsight"]

    with http_receiver(401) as (url, received):
        form = page.locator("#target-form")
        form.locator('input[name="name"]').fill("soar")
        form.locator('input[name="url"]').fill(f"{url}/hooks/alerts")
        form.locator('input[name="auth_header"]').fill("Bearer expired-token")
        form.get_by_role("button", name="Save target").click()
        row = page.locator('tr[data-target="soar"]')
        expect(row).to_contain_text("auth header: set")
        row.get_by_role("button", name="Send test").click()
        result = row.locator(".test-result")
        expect(result).to_contain_text("not delivered: HTTP 401")
        expect(result.locator(".hint")).to_contain_text("check the auth header")
        assert received.requests[0][0]["authorization"] == "Bearer expired-token"
        shot(page, "settings-notify")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove").click()
    expect(page.locator('tr[data-target="soar"]')).to_have_count(0)
    expect(page.locator('tr[data-target="soc-mail"]')).to_be_visible()

    # A bad target is refused with the problem named.
    form = page.locator("#target-form")
    form.locator('input[name="name"]').fill("broken")
    form.locator('select[name="kind"]').select_option("syslog")
    form.get_by_role("button", name="Save target").click()
    expect(form.locator(".error")).to_contain_text("host")


def test_an_analyst_sees_targets_but_no_form(page: Page, console: Console) -> None:
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/settings")
    form = page.locator("#target-form")
    form.locator('input[name="name"]').fill("siem")
    form.locator('select[name="kind"]').select_option("syslog")
    form.locator('input[name="syslog_host"]').fill("siem.example")
    form.get_by_role("button", name="Save target").click()
    expect(page.locator('tr[data-target="siem"]')).to_contain_text("udp://siem.example:514")

    sign_out(page)
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/settings")
    expect(page.locator('tr[data-target="siem"]')).to_contain_text("udp://siem.example:514")
    expect(page.locator("#target-form")).to_have_count(0)
    expect(page.locator("button[data-test-target]")).to_have_count(0)
    shot(page, "settings-notify-analyst")
