"""The console in Chromium: editing a source, sessions that expire, completing raw paths."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Page, expect

from hubsight.devbroker import LocalBroker
from hubsight.query.saved import SavedScope, list_saved, save
from hubsight.simulate import generate_messages
from hubsight.sources.config import make_source
from hubsight.store.users import Account
from hubsight.web.auth import SESSION_IDLE_ENV

from tests.browser.harness import ADMIN, ANALYST, Console, shot, sign_in
from tests.query.dataset import ROWS, WINDOW, events
from tests.support import (
    PLANTED_PASSWORD,
    assert_no_secret,
    connection_string,
    create_topic,
    kafka_source,
    produce,
    wait_until,
)

pytestmark = pytest.mark.browser
HOST = "contoso-logs.servicebus.windows.net"
IDLE_S = 4


@pytest.fixture
def expiring_console(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Console:
    """The console with sessions that end after a few seconds without a request."""
    monkeypatch.setenv(SESSION_IDLE_ENV, f"{IDLE_S}s")
    console: Console = request.getfixturevalue("console")
    return console


def _edit(page: Page, name: str) -> None:
    page.locator(f'tr[data-source="{name}"]').get_by_role("button", name="Edit").click()
    expect(page.locator("#edit-source input[name=name]")).to_have_value(name)


def test_edit_a_source_test_the_edit_then_save_and_see_it_healthy(
    page: Page, console: Console, broker: LocalBroker
) -> None:
    topic = create_topic(broker.bootstrap)
    produce(broker.bootstrap, topic, generate_messages(5, seed=4))
    console.service.catalog.add(kafka_source("relay", broker.bootstrap, "no-such-topic"))
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/sources")
    row = page.locator('tr[data-source="relay"]')
    expect(row.locator(".state")).to_have_text("error", timeout=30_000)
    _edit(page, "relay")
    form = page.locator("#edit-source")
    expect(form.locator("input[name=bootstrap]")).to_have_value(broker.bootstrap)
    expect(form.locator("input[name=topics]")).to_have_value("no-such-topic")
    advanced = json.loads(form.locator("textarea[name=advanced]").input_value())
    assert advanced["tuning"]["session_timeout_ms"] == 6_000
    form.locator("input[name=topics]").fill(topic)
    expect(form.locator(".form-msg")).to_be_visible()
    expect(form.locator(".form-msg")).to_have_text("valid; not saved yet")
    form.get_by_role("button", name="Test connection").click()
    expect(form.locator(".probe h3")).to_have_text(
        "relay (not saved): connection works", timeout=30_000
    )
    expect(form.locator(".probe li").last).to_contain_text("first_message: ok")
    assert console.service.catalog.get("relay").topics == ["no-such-topic"]
    shot(page, "data-collection-edit")
    form.get_by_role("button", name="Save").click()
    expect(row.locator(".state")).to_have_text("running", timeout=30_000)
    expect(row.locator("td").nth(3)).not_to_have_text("0", timeout=30_000)
    expect(row.locator("td").nth(6)).to_have_text("—")
    saved = console.service.catalog.get("relay")
    assert (saved.topics, saved.keep_unparsed, saved.enabled) == ([topic], True, True)
    assert saved.consumer_group.startswith("hubsight-")


def test_edit_an_event_hubs_source_without_seeing_its_secret(page: Page, console: Console) -> None:
    profile = {"kind": "eventhubs", "server": HOST, "connection_string": connection_string()}
    source = make_source({"name": "azure-prod", "profile": profile, "enabled": False})
    console.service.catalog.add(source)
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/sources")
    _edit(page, "azure-prod")
    form = page.locator("#edit-source")
    expect(form.locator(".cs-msg")).to_have_text(
        f"stored connection string kept: namespace {HOST}, hub insights-operational-logs"
    )
    expect(form.locator("input[name=connection_string]")).to_have_value("")
    assert_no_secret(page.content())
    form.locator("input[name=server]").fill("other-ns.servicebus.windows.net")
    expect(form.locator(".form-msg")).to_contain_text(
        f"the connection string is for {HOST} but the server is other-ns.servicebus.windows.net"
    )
    other = connection_string("other-ns.servicebus.windows.net", entity="signins")
    form.locator("input[name=connection_string]").fill(other)
    expect(form.locator(".cs-msg")).to_have_text(
        "the connection string is limited to the hub signins (EntityPath)"
    )
    form.locator("input[name=topics]").fill("signins")
    expect(form.locator(".cs-msg")).to_have_text(
        "namespace other-ns.servicebus.windows.net · hub signins"
    )
    expect(form.locator(".form-msg")).to_have_text("valid; not saved yet")
    form.locator("input[name=default_domain]").fill("contoso.com")
    form.get_by_role("button", name="Save").click()
    expect(page.locator('tr[data-source="azure-prod"] .muted')).to_contain_text("other-ns")
    saved = console.service.catalog.get("azure-prod")
    assert (saved.enabled, saved.topics, saved.default_domain) == (
        False,
        ["signins"],
        "contoso.com",
    )
    assert saved.profile.bootstrap == "other-ns.servicebus.windows.net:9093"
    assert_no_secret(page.content())


def test_a_wrong_key_in_an_edit_shows_the_sasl_hint(
    page: Page, console: Console, auth_broker: LocalBroker
) -> None:
    console.service.catalog.add(kafka_source("scram", "127.0.0.1:1", "any"))
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/sources")
    # The add form tests its settings before anything is added.
    add = page.locator("#add-source")
    add.locator("input[name=name]").fill("scram-2")
    add.locator("select[name=kind]").select_option("kafka")
    add.locator("input[name=bootstrap]").fill(auth_broker.bootstrap)
    add.locator("select[name=sasl]").select_option("scram-sha-512")
    add.locator("input[name=username]").fill("nobody")
    add.locator("input[name=password]").fill(PLANTED_PASSWORD)
    add.get_by_role("button", name="Test connection").click()
    expect(add.locator(".probe h3")).to_have_text(
        "scram-2 (not saved): connection fails", timeout=30_000
    )
    expect(add.locator(".probe li.step-failed")).to_contain_text("sasl: failed")
    assert [c.name for c in console.service.catalog.all()] == ["scram"]
    _edit(page, "scram")
    form = page.locator("#edit-source")
    form.locator("input[name=bootstrap]").fill(auth_broker.bootstrap)
    form.locator("select[name=sasl]").select_option("scram-sha-256")
    form.locator("input[name=username]").fill("nobody")
    form.locator("input[name=password]").fill(PLANTED_PASSWORD)
    form.get_by_role("button", name="Test connection").click()
    failed = form.locator(".probe li.step-failed")
    expect(failed).to_contain_text("sasl: failed", timeout=30_000)
    expect(failed.locator(".hint")).to_contain_text("refused the user name or password")
    form.get_by_role("button", name="Save").click()
    row = page.locator('tr[data-source="scram"]')
    expect(row.locator(".state")).to_have_text("error", timeout=30_000)
    expect(row.locator(".hint")).to_contain_text("refused the user name or password")
    shot(page, "data-collection-edit-wrong-key")
    assert_no_secret(page.content())


def test_an_idle_session_expires_and_the_login_page_says_so(
    page: Page, expiring_console: Console
) -> None:
    console = expiring_console
    sign_in(page, console, ANALYST)
    # Requests keep the session alive past its idle limit...
    for _ in range(IDLE_S + 2):
        time.sleep(1)
        assert page.request.get(console.url + "/api/v1/event-sources").status == 200
    page.goto(console.url + "/search")
    page.fill("#leql", "corp")
    # ...and without any, it ends on the server: the next search sends the user to sign in.
    time.sleep(IDLE_S + 1)
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(console.url + "/login?next=%2Fsearch&expired=idle")
    expect(page.locator(".notice")).to_have_text(
        "Your session expired after a period without activity. Sign in again."
    )
    shot(page, "login-expired")
    page.fill('input[name="name"]', ANALYST[0])
    page.fill('input[name="password"]', ANALYST[1])
    page.click('button[type="submit"]')
    expect(page).to_have_url(console.url + "/search")
    time.sleep(IDLE_S + 1)
    page.goto(console.url + "/alerts")
    expect(page).to_have_url(console.url + "/login?next=/alerts&expired=idle")
    expect(page.locator(".notice")).to_be_visible()


def test_complete_a_raw_path_and_search_with_it(page: Page, console: Console) -> None:
    console.service.store.write(events())
    sign_in(page, console, ANALYST)
    with page.expect_response(lambda r: "/api/v1/raw-paths?log_set=Ingress" in r.url):
        page.goto(console.url + "/search?log_set=Ingress+Authentication")
    page.locator('select[name="last"]').select_option("")
    page.fill('input[name="from"]', WINDOW[0][:16])
    page.fill('input[name="to"]', WINDOW[1][:16])
    box = page.locator("#leql")
    box.press_sequentially("where(errorc")
    expect(page.locator("#suggest li.on")).to_have_text("properties.status.errorCode")
    box.press("Tab")
    box.press_sequentially("=50126) groupby(log_name")
    expect(box).to_have_value("where(properties.status.errorCode=50126) groupby(log_name")
    box.press_sequentially(")")
    shot(page, "search-raw-path")
    page.keyboard.press("Control+Enter")
    expected = sum(1 for r in ROWS if r.raw["properties"]["status"]["errorCode"] == 50126)
    expect(page.locator("#rows tbody tr")).to_have_count(1)
    expect(page.locator("#rows tbody td").nth(1)).to_have_text(str(expected))
    page.fill("#leql", "")
    box.press_sequentially("properties.deviceD")
    expect(page.locator("#suggest li")).to_have_text(
        ["properties.deviceDetail.isCompliant", "properties.deviceDetail.operatingSystem"]
    )
    # Third Party Alerts have no device details: choosing them alone changes what is offered.
    page.locator('input[name="log_sets"][value="Ingress Authentication"]').uncheck()
    with page.expect_response(lambda r: "/api/v1/raw-paths?log_set=Third" in r.url):
        page.locator('input[name="log_sets"][value="Third Party Alerts"]').check()
    page.fill("#leql", "")
    box.press_sequentially("properties.deviceD")
    expect(page.locator("#suggest")).to_be_hidden()
    page.fill("#leql", "")
    box.press_sequentially("source_json.ca")
    expect(page.locator("#suggest li")).to_have_text(["source_json.category"])


def test_an_admin_gives_a_deleted_accounts_saved_query_to_another(
    page: Page, console: Console
) -> None:
    console.users.create("bob", "bob's long passphrase", "analyst")
    bob = Account("bob", "analyst")
    save(console.service.store, bob, name="bob's hunt", query="corp", scope=SavedScope())
    console.users.delete("bob")
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/search")
    reassign = page.locator("#reassign")
    page.locator("#saved").select_option(label="bob's hunt (bob, account deleted)")
    expect(reassign).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept(ANALYST[0]))
    reassign.click()
    expect(page.locator("#saved option:checked")).to_have_text("bob's hunt")
    expect(reassign).to_be_hidden()
    # Owned again, it can be edited: sharing it is one.
    page.locator("#share").check()
    admin = Account(ADMIN[0], "admin")
    wait_until(lambda: list_saved(console.service.store, admin)[0].shared, 10, "shared")
    (moved,) = list_saved(console.service.store, admin)
    assert (moved.owner, moved.name, moved.query) == (ANALYST[0], "bob's hunt", "corp")


def test_the_add_form_refuses_a_port_out_of_range_in_the_apis_words(
    page: Page, console: Console
) -> None:
    # The form sends to the API, whose one check of addresses the CLI shares.
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/sources")
    form = page.locator("#add-source")
    form.locator('input[name="name"]').fill("relay")
    form.locator('select[name="kind"]').select_option("kafka")
    form.locator('input[name="bootstrap"]').fill("kafka-1:99999")
    form.locator('button[type="submit"]').click()
    expect(form.locator(".form-error")).to_contain_text(
        "bootstrap server 'kafka-1:99999': port 99999 is not between 1 and 65535; "
        "write host:port[,host:port...], e.g. kafka-1:9092"
    )
    assert console.service.catalog.all() == []


def test_an_admin_sets_and_clears_case_retention_in_settings(page: Page, console: Console) -> None:
    console.users.create(*ADMIN, "admin")
    sign_in(page, console, ADMIN)
    page.goto(console.url + "/settings#retention")
    row = page.locator('tr[data-log-set="alerts"]')
    expect(row).to_contain_text("1 alert, 1 investigation")
    days = row.locator("input[name=days]")
    expect(days).to_have_value("")
    days.fill("400")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".field-msg")).to_have_text(
        "saved; the service deletes what is due within a minute"
    )
    assert console.service.catalog.case_retention() == 400
    days.fill("")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".field-msg")).to_have_text("saved; kept for ever")
    assert console.service.catalog.case_retention() is None
    shot(page, "settings-case-retention")
