"""The console in a real Chromium: sign-in, sources, search, alerts, users, roles, CSRF."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, expect

from hubsight.cli.run_cmd import announce_first_run
from hubsight.devbroker import LocalBroker
from hubsight.query.saved import list_saved
from hubsight.simulate import generate_messages
from hubsight.store.users import Account

from tests.browser.harness import ADMIN, ANALYST, Console, shot, sign_in, sign_out
from tests.query.dataset import WINDOW, events
from tests.support import (
    FAST_TUNING,
    PLANTED_PASSWORD,
    Terminal,
    assert_no_secret,
    connection_string,
    kafka_source,
    produce,
)

pytestmark = pytest.mark.browser


def test_first_admin_from_the_setup_link_then_sign_in(page: Page, console: Console) -> None:
    # A first run: no account, so `hubsight run` prints a one-time link on its terminal.
    console.users.delete(ANALYST[0])
    terminal = Terminal()
    announce_first_run(console.users, console.url, terminal)
    link = re.search(r"http://\S+/setup\?token=\S+", terminal.getvalue())
    assert link is not None
    page.goto(link.group(0))
    form = page.locator("#setup")
    form.locator('input[name="name"]').fill(ADMIN[0])
    form.locator('input[name="password"]').fill(ADMIN[1])
    form.locator('input[name="repeat"]').fill(ADMIN[1])
    shot(page, "setup")
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(console.url + "/")
    expect(page.locator(".who")).to_contain_text(ADMIN[0])
    sign_out(page)
    page.goto(console.url + "/search")
    expect(page).to_have_url(console.url + "/login?next=/search")
    shot(page, "login")
    page.fill('input[name="name"]', ADMIN[0])
    page.fill('input[name="password"]', "not the password")
    page.click('button[type="submit"]')
    expect(page.locator(".error")).to_have_text("Wrong user name or password.")
    page.fill('input[name="name"]', ADMIN[0])
    page.fill('input[name="password"]', ADMIN[1])
    page.click('button[type="submit"]')
    expect(page).to_have_url(console.url + "/search")
    sign_in(page, console, ADMIN)
    expect(page.locator(".who")).to_contain_text("admin")
    shot(page, "dashboard")


def _add_kafka_source(page: Page, name: str, bootstrap: str, topic: str, **extra: str) -> None:
    form = page.locator("#add-source")
    form.locator('input[name="name"]').fill(name)
    form.locator('select[name="kind"]').select_option("kafka")
    form.locator('input[name="bootstrap"]').fill(bootstrap)
    for field, value in extra.items():
        selector = f'select[name="{field}"]' if field == "sasl" else f'input[name="{field}"]'
        if field == "sasl":
            form.locator(selector).select_option(value)
        else:
            form.locator(selector).fill(value)
    form.locator('input[name="topics"]').fill(topic)
    form.locator("summary").click()
    # Short client timings and a group of its own, as every broker test uses (support.py).
    advanced = {"tuning": FAST_TUNING, "consumer_group": f"hubsight-{uuid.uuid4().hex[:8]}"}
    form.locator('textarea[name="advanced"]').fill(json.dumps(advanced))
    form.locator('button[type="submit"]').click()
    expect(page.locator(f'tr[data-source="{name}"]')).to_be_visible()


def test_add_source_turns_healthy_and_probe_shows_steps(
    page: Page, console: Console, broker: LocalBroker, topic: str
) -> None:
    mystery = {"records": [{"category": "MysteryLogs", "time": "2026-11-27T00:00:00Z"}]}
    produce(broker.bootstrap, topic, [*generate_messages(5, seed=3), json.dumps(mystery).encode()])
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/sources")
    eventhubs = page.locator('input[name="connection_string"]')
    eventhubs.fill("Endpoint=nonsense")
    expect(page.locator("#cs-msg")).to_contain_text("expected Endpoint=sb://")
    eventhubs.fill(connection_string())
    expect(page.locator("#cs-msg")).to_have_text("namespace contoso-logs.servicebus.windows.net")
    expect(page.locator('input[name="server"]')).to_have_value(
        "contoso-logs.servicebus.windows.net"
    )
    _add_kafka_source(page, "relay", broker.bootstrap, topic)
    row = page.locator('tr[data-source="relay"]')
    expect(row.locator(".state")).to_have_text("running", timeout=30_000)
    expect(row.locator("td").nth(3)).not_to_have_text("0", timeout=30_000)
    page.reload()
    page.get_by_role("button", name="MysteryLogs").click()
    samples = page.locator(".samples")
    expect(samples.locator("pre")).to_contain_text('"category": "MysteryLogs"')
    expect(samples.locator(".hint")).not_to_be_empty()
    row.get_by_role("button", name="Test connection").click()
    expect(page.locator("#probe h3")).to_have_text("relay: connection works", timeout=30_000)
    steps = page.locator("#probe li b").all_inner_texts()
    assert [s.split(":")[0] for s in steps] == [
        "dns",
        "tcp",
        "tls",
        "sasl",
        "topic",
        "first_message",
    ]
    shot(page, "data-collection")
    assert_no_secret(page.content())
    # Events per minute as a chart with its description; the source's page lists its lag.
    spark = row.locator(".spark")
    expect(spark.locator("canvas")).to_have_count(1)
    described = re.compile("Events stored per minute over the last hour: [1-9]")
    expect(spark).to_have_attribute("aria-label", described)
    row.get_by_role("link", name="relay").click()
    expect(page.locator("#per-minute")).to_have_attribute("aria-label", described)
    expect(page.locator("#lag tbody td").first).to_have_text(topic, timeout=30_000)
    shot(page, "source-page")
    page.go_back()
    row.get_by_role("button", name="Disable").click()
    expect(row.get_by_role("button", name="Enable")).to_be_visible()
    stored = console.service.catalog.get("relay")
    assert (stored.enabled, stored.consumer_group.startswith("hubsight-")) == (False, True)


def test_an_analyst_creates_and_revokes_an_api_token(page: Page, console: Console) -> None:
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/settings")
    form = page.locator("#new-token")
    form.locator('input[name="label"]').fill("soar")
    form.locator('input[name="days"]').fill("7")
    form.get_by_role("button", name=re.compile("Create token")).click()
    expect(page.locator("#token-out")).to_contain_text("Token (shown once; expires ")
    page.reload()
    row = page.locator("#tokens tbody tr").filter(has_text="soar")
    expect(row).to_contain_text("active")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#tokens tbody tr").filter(has_text="soar")).to_contain_text("revoked")
    (token,) = console.users.tokens(ANALYST[0])
    assert (token.label, token.revoked_at is not None) == ("soar", True)
    assert round(token.expires_at - token.created_at) == 7 * 86400


def test_admin_tunes_a_rule(page: Page, console: Console) -> None:
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/settings")
    page.locator('details[data-rule="auth.brute_force"] summary').click()
    form = page.locator('form.tune[data-rule="auth.brute_force"]')
    saved = form.locator(".form-msg")
    # A form of the rule's settings: a refused value is marked beside its field with a hint.
    form.get_by_label("Dedup Minutes").fill("0")
    form.get_by_role("button", name="Save").click()
    expect(form.locator('.field-msg[data-for="dedup_minutes"]')).to_have_text(
        "Input should be greater than or equal to 1"
        " (a whole number from 1 up to 5256000 (default 60))"
    )
    expect(saved).to_have_text("not saved: see the field marked")
    form.get_by_label("Dedup Minutes").fill("60")
    form.get_by_label("Count").fill("25")
    form.get_by_label("Addresses or CIDRs").fill("10.0.0.0/8\nnot-an-ip")
    form.get_by_role("button", name="Save").click()
    expect(form.locator('.field-msg[data-for="dedup_minutes"]')).to_be_hidden()
    expect(form.locator('.field-msg[data-for="exceptions.ips"]')).to_contain_text("not-an-ip")
    # One save is one request: the refused exception kept the valid count from being saved alone.
    rules = page.request.get(f"{console.url}/api/v1/rules").json()
    (brute,) = [r for r in rules if r["id"] == "auth.brute_force"]
    assert brute["thresholds"]["count"] == 10
    form.get_by_label("Addresses or CIDRs").fill("10.0.0.0/8")
    form.get_by_role("button", name="Save").click()
    expect(saved).to_have_text("saved; applies to the running detection within seconds")
    page.reload()
    summary = page.locator('details[data-rule="auth.brute_force"] summary')
    # Readable, not JSON: each setting by its title, then what the rule never alerts on.
    expect(summary).to_have_text(
        "Dedup Minutes: 60 · Count: 25 · Window Minutes: 10 · never alert on addresses: 10.0.0.0/8"
    )
    assert form.get_by_label("Count").input_value() == "25"
    assert form.get_by_label("Addresses or CIDRs").input_value() == "10.0.0.0/8"
    shot(page, "settings-admin")
    # The change is in the audit trail, with what changed (the refused one as failed).
    page.get_by_role("link", name="Audit trail").click()
    saved = page.locator("#audit tbody tr").filter(has_text="thresholds.count")
    expect(saved).to_contain_text("thresholds.count: 10 → 25")
    cells = saved.locator("td")
    expect(cells.nth(2)).to_contain_text(ADMIN[0])
    expect(cells.nth(3)).to_have_text("127.0.0.1")
    expect(cells.nth(4)).to_have_text("rule.update")
    expect(cells.nth(6)).to_have_text("ok")
    page.get_by_label("Action").fill("sign-in")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit tbody tr")).to_have_count(1)
    shot(page, "settings-audit")


def test_wrong_credentials_show_the_sasl_hint(
    page: Page, console: Console, auth_broker: LocalBroker
) -> None:
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/sources")
    _add_kafka_source(
        page, "wrong-key", auth_broker.bootstrap, "any",
        sasl="scram-sha-256", username="nobody", password=PLANTED_PASSWORD,
    )  # fmt: skip
    row = page.locator('tr[data-source="wrong-key"]')
    row.get_by_role("button", name="Test connection").click()
    failed = page.locator("#probe li.step-failed")
    expect(failed).to_contain_text("sasl: failed", timeout=30_000)
    expect(failed.locator(".hint")).not_to_be_empty()
    expect(row.locator(".hint")).not_to_be_empty(timeout=30_000)
    shot(page, "data-collection-wrong-key")
    assert_no_secret(page.content())


def test_search_with_chart_and_an_error_with_its_caret(page: Page, console: Console) -> None:
    console.service.store.write(events())
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/search")
    page.locator('select[name="last"]').select_option("")
    page.fill('input[name="from"]', WINDOW[0][:16])
    page.fill('input[name="to"]', WINDOW[1][:16])
    box = page.locator("#leql")
    box.press_sequentially("grou")
    expect(page.locator("#suggest li.on")).to_have_text("groupby")
    box.press("Tab")
    box.press_sequentially("resu")
    expect(page.locator("#suggest li.on")).to_have_text("result")
    box.press("Enter")
    box.press_sequentially(")")
    expect(box).to_have_value("groupby(result)")
    expect(page.locator(".leql pre .t-kw")).to_have_text("groupby")
    page.click('#search button[type="submit"]')
    expect(page.locator("#rows tbody tr")).to_have_count(4)
    chart = page.locator("#chart .echart")
    expect(chart).to_have_attribute("aria-label", re.compile("Bar chart.*FAILED_MFA is 15"))
    page.locator("#chart-kind").select_option("pie")
    expect(chart).to_have_attribute("aria-label", re.compile("Pie chart.*SUCCESS"))
    shot(page, "search-groupby")
    page.once("dialog", lambda dialog: dialog.accept("results by kind"))
    page.click("#save")
    expect(page.locator("#saved option:checked")).to_have_text("results by kind")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    exported = Path(download.value.path()).read_text().splitlines()
    assert (exported[0], len(exported)) == ("result,count", 5)
    page.fill("#leql", "calculate(count) timeslice(4)")
    page.keyboard.press("Control+Enter")
    expect(chart).to_have_attribute("aria-label", re.compile("Line chart"))
    expect(page.locator("#chart-kind")).to_be_hidden()
    page.fill("#leql", "corp")
    page.keyboard.press("Control+Enter")
    first = page.locator("#rows tr.event").first
    expect(first).to_be_visible()
    first.locator("td").first.click()
    expect(page.locator("#rows tr.sub pre").first).to_contain_text('"log_name"')
    # Times show in the viewer's zone with the ISO time on hover.
    assert first.locator("td").first.get_attribute("title", timeout=1000) is not None
    expect(first.locator("td.summary .pill").first).to_contain_text("=")
    first.locator('td.value[data-key="log_name"]').click()
    expect(page.locator("#leql")).to_have_value('where(log_name="Azure AD Sign-in") corp')
    page.fill("#leql", "where(riskLevel = high)")
    page.keyboard.press("Control+Enter")
    warning = page.locator("#qwarning")
    expect(warning).to_contain_text("'riskLevel' is not a hubsight key")
    expect(warning).to_contain_text("did you mean risk_level?")
    expect(page.locator("#rows tr.event").first).to_be_visible()
    page.fill("#leql", "where(risk_level)")
    page.keyboard.press("Control+Enter")
    expect(warning).to_be_hidden()
    page.fill("#leql", "where(user=)")
    page.keyboard.press("Control+Enter")
    error = page.locator("#qerror")
    expect(error).to_contain_text("line 1, column 12")
    assert page.evaluate("document.querySelector('#leql').selectionStart") == 11
    lines = error.inner_text().splitlines()
    caret = next(line for line in lines if line.strip() == "^")
    query_line = lines[lines.index(caret) - 1]
    assert query_line[caret.index("^")] == ")"
    shot(page, "search-error")
    page.reload()
    page.locator("#saved").select_option(label="results by kind")
    expect(page.locator("#leql")).to_have_value("groupby(result)")
    # Delete asks first: dismissed, the query stays; accepted, it goes.
    asked: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#unsave")
    expect(page.locator("#saved option")).to_have_count(2)
    assert asked == ['Delete the saved query "results by kind"? This cannot be undone.']
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#unsave")
    expect(page.locator("#saved option")).to_have_count(1)
    assert list_saved(console.service.store, Account(ANALYST[0], "analyst")) == []
    # The account's recent searches, newest first (not the one that did not parse); a click
    # runs one again with its own time range.
    page.fill("#leql", "")
    page.locator("#history summary").click()
    expect(page.locator("#history li button").first).to_have_text("where(risk_level)")
    page.locator("#history li button", has_text="groupby(result)").click()
    expect(page.locator("#leql")).to_have_value("groupby(result)")
    expect(page.locator("#rows tbody tr")).to_have_count(4)
    expect(page.locator('input[name="from"]')).to_have_value(WINDOW[0][:16])


def test_open_an_alert_comment_and_close_it(page: Page, console: Console) -> None:
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/alerts?status=open")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.locator("#triage")).to_be_visible()
    page.locator('select[name="status"]').select_option("closed")
    page.locator('select[name="disposition"]').select_option("benign")
    page.fill('textarea[name="comment"]', "user confirmed the new phone")
    page.click('#triage button[type="submit"]')
    expect(page.locator("#status")).to_have_text("closed · benign")
    history = page.locator("#history")
    expect(history).to_contain_text("user confirmed the new phone")
    expect(history).to_contain_text(ANALYST[0])
    page.locator("button[data-context]").first.click()
    expect(page.locator("tr.sub pre").first).to_contain_text("adele.vance@contoso.com")
    shot(page, "alert")
    page.goto(console.url + "/alerts?status=open")
    expect(page.locator("#alerts")).to_contain_text("No alerts match.")


def test_user_page_with_the_map(page: Page, console: Console) -> None:
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/users")
    shot(page, "users")
    page.locator("table.grid a").first.click()
    expect(page.locator('svg.worldmap path[data-country="FR"]')).to_have_count(1)
    expect(page.locator("h1")).to_have_text("adele.vance@contoso.com")
    expect(page.locator('svg.worldmap path[data-country="DE"][data-count]')).to_have_count(1)
    expect(page.locator("#countries")).to_contain_text("Germany")
    page.fill('input[name="days"]', "3650")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("signed in after 10 password failures")).to_be_visible()
    shot(page, "user")
    for path, name in [("/", "dashboard-charts"), ("/settings", "settings"), ("/alerts", "alerts")]:
        page.goto(console.url + path)
        shot(page, name)


def test_analyst_cannot_edit_a_source(page: Page, console: Console, broker: LocalBroker) -> None:
    console.service.catalog.add(kafka_source("relay", broker.bootstrap, "t"))
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/sources")
    expect(page.locator('tr[data-source="relay"]')).to_be_visible()
    expect(page.locator("#add-source")).to_have_count(0)
    expect(page.locator("button[data-delete]")).to_have_count(0)
    status = page.evaluate(
        """async () => (await fetch('/api/v1/event-sources/relay', {method: 'DELETE',
            headers: {'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}}))
            .status"""
    )
    assert status == 403
    assert console.service.catalog.get("relay").name == "relay"
    shot(page, "data-collection-analyst")


def test_no_session_is_401_and_missing_csrf_is_rejected(page: Page, console: Console) -> None:
    anonymous = page.request.get(console.url + "/api/v1/alerts")
    assert anonymous.status == 401
    assert anonymous.json()["error"] == "sign in required"
    sign_in(page, console, ANALYST)
    assert page.request.get(console.url + "/api/v1/alerts").status == 200
    alert_id = page.request.get(console.url + "/api/v1/alerts").json()[0]["id"]
    forged = page.request.patch(
        console.url + f"/api/v1/alerts/{alert_id}", data={"status": "closed"}
    )
    assert forged.status == 403
    assert "CSRF" in forged.json()["error"]
    assert page.request.get(console.url + f"/api/v1/alerts/{alert_id}").json()["status"] == "open"


def test_an_analyst_reads_each_rules_settings_by_name(page: Page, console: Console) -> None:
    # They were shown as raw JSON: {"dedup_minutes": 60, "client_apps": ["Authenticated SMTP", ...
    sign_in(page, console, ANALYST)
    page.goto(console.url + "/settings")
    legacy = page.locator("#rules tr").filter(has_text="auth.legacy_protocol").locator(".tuning")
    expect(legacy).to_have_text(
        "Dedup Minutes: 1440 · Client Apps: Authenticated SMTP, AutoDiscover, Exchange ActiveSync, "
        "Exchange Online PowerShell, Exchange Web Services and 8 more"
    )
    travel = page.locator("#rules tr").filter(has_text="auth.impossible_travel").locator(".tuning")
    expect(travel).to_contain_text("Vpn Ips: none")
    assert "{" not in page.locator("#rules").inner_text()
