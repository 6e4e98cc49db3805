"""The console's pages render over a service with an alert, and the world map draws countries."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from hubsight.detect import dataplane, pim
from hubsight.detect.baseline import KINDS, Seen, UserBaseline
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.ruleset import build_rule
from hubsight.health import DetectionLag, SourceHealth
from hubsight.service import Service
from hubsight.sources.base import PartitionLag
from hubsight.sources.config import make_source
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth
from hubsight.web.entity_pages import BASELINE_LABELS, OTHER_KIND

from tests.query import dataset
from tests.support import FAST_HASH, service_of

STATIC = Path(__file__).parents[2] / "src/hubsight/web/static"


@pytest.fixture
def client(data_dir: Path) -> Iterator[TestClient]:
    """The socket-style app (no sign-in) over one brute-force-success alert."""
    engine = DetectionEngine(
        DetectDB.in_dir(data_dir), [build_rule(BruteForceSuccess, {})], options=EngineOptions()
    )
    (example,) = [e for e in BruteForceSuccess.examples() if e.fires][:1]
    assert engine.process(example.events)
    engine.close()
    store = EmbeddedStore(data_dir)
    try:
        app = create_app(Service(data_dir, store, Catalog(data_dir)))
        app.state.detect_db = DetectDB.in_dir(data_dir)
        with TestClient(app) as test_client:
            yield test_client
    finally:
        store.close()


def test_the_user_page_labels_every_baseline_kind(client: TestClient, data_dir: Path) -> None:
    # Every kind the engine learns (observe refuses others) has a label; pim_role had none and
    # showed as its key.
    assert {pim.ROLE_KIND, dataplane.SIGNIN, "identity"} <= KINDS
    assert set(BASELINE_LABELS) == KINDS
    with pytest.raises(ValueError, match=r"'new_kind' is not in detect\.baseline\.KINDS"):
        UserBaseline().observe("new_kind", "x", 1.0, 60.0)
    learnt = UserBaseline()
    for kind in sorted(KINDS):
        learnt.observe(kind, f"value-of-{kind}", 1.0, 60.0)
    # A kind saved by another release, which this one has no label for.
    learnt.kinds["from_a_newer_release"] = {"kept": Seen(first=1.0, last=1.0)}
    DetectDB.in_dir(data_dir).execute(
        "INSERT OR REPLACE INTO baselines VALUES (?, ?)",
        ("ana@example.com", msgspec.msgpack.encode(learnt)),
    )
    page = client.get("/users/ana@example.com")
    assert page.status_code == 200
    card = page.text.split('id="baseline"', 1)[1].split("</section>", 1)[0]
    terms = [html.unescape(t) for t in re.findall(r"<dt>([^<]*)</dt>", card)]
    assert terms == [*(BASELINE_LABELS[k] for k in sorted(KINDS)), OTHER_KIND]
    assert "<dd>value-of-pim_role</dd>" in card
    assert "<dd>kept</dd>" in card
    assert "<dt>Privileged roles activated (PIM)</dt>" in card


def test_every_page_renders(client: TestClient) -> None:
    alerts = client.get("/alerts")
    assert alerts.status_code == 200
    (alert_id,) = re.findall(r'href="/alerts/([0-9a-f]{16})"', alerts.text)
    detail = client.get(f"/alerts/{alert_id}")
    assert "Triage" in detail.text
    assert detail.text.count("data-context=") == 11
    user = re.search(r'href="/users/([^"]+)"', detail.text)
    assert user is not None
    user_page = client.get(f"/users/{user.group(1)}")
    assert user_page.status_code == 200
    assert '<svg class="worldmap"' in user_page.text
    for path, needle in [
        ("/", "Open alerts by severity"),
        ("/sources", "Azure setup checklist"),
        ("/sources", "Create or update activity log profiles Failure"),
        ("/sources", "hubsight azure setup --subscription"),
        ("/coverage", "enabled rules;"),
        ("/search", 'id="leql"'),
        ("/users", user.group(1).replace("%40", "@")),
        ("/settings", "auth.brute_force_success"),
        ("/investigations", "signed in after 10 password failures"),
        ("/addresses/203.0.113.10", "Users and results from this address"),
        ("/resources?id=/subscriptions/1/rg/vm1", "No operations on this resource"),
    ]:
        page = client.get(path)
        assert page.status_code == 200, path
        assert needle in page.text, path
        # Every script and style comes from the product itself, never from another site.
        for url in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text):
            assert url.startswith(("/static/", "data:")), (path, url)
    missing = client.get("/alerts/0000000000000000")
    assert missing.status_code == 404
    assert 'href="/alerts"' in missing.text
    assert client.get("/static/console.js").status_code == 200
    # Alert filters match part of a user or a rule, and say when nothing matches.
    assert alert_id in client.get("/alerts", params={"user": "ADELE", "rule_id": "force"}).text
    nothing = client.get("/alerts", params={"user": "nobody-like-this"}).text
    assert alert_id not in nothing
    assert "Nothing matches these filters" in nothing
    assert alert_id not in client.get("/alerts", params={"user": "adele%"}).text
    # A wrong link shows a page of the console with a way back; the API keeps answering JSON.
    lost = client.get("/no/such/page")
    assert lost.status_code == 404
    assert "There is no page at /no/such/page." in lost.text
    assert 'href="/"' in lost.text
    assert client.get("/api/v1/no-such-thing").json()["error"] == "Not Found"
    assert client.get("/static/vendor/echarts/echarts.common.min.js").status_code == 200


def test_pages_escape_what_users_typed(client: TestClient) -> None:
    page = client.get("/alerts", params={"user": '"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;" in page.text


def test_console_pages_stay_light(client: TestClient) -> None:
    # What a browser loads for each page: the shared script and style plus the page's own.
    # The vendored chart library (static/vendor/, cached by the browser) is not counted.
    for path in ("/", "/sources", "/search", "/alerts", "/settings"):
        assets = set(
            re.findall(r'(?:src|href)="/static/([\w.-]+\.(?:js|css))"', client.get(path).text)
        )
        assert "console.js" in assets, path
        weight = sum((STATIC / name).stat().st_size for name in assets)
        assert weight < 45_000, (path, weight)


def test_triage_history_names_the_signed_in_account(client: TestClient, data_dir: Path) -> None:
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("ana", "analyst passphrase", "analyst")
    app = create_app(service_of(client), auth=ConsoleAuth(users))
    app.state.detect_db = DetectDB.in_dir(data_dir)
    token = {"Authorization": f"Bearer {users.issue_token('ana', 'test')}"}
    with TestClient(app) as signed:
        (alert,) = signed.get("/api/v1/alerts", headers=token).json()
        changed = signed.patch(
            f"/api/v1/alerts/{alert['id']}",
            json={"comment": "looked at it", "actor": "mallory"},
            headers=token,
        ).json()
    assert [(h["actor"], h["detail"]) for h in changed["history"]] == [("ana", "looked at it")]


def test_alerts_filter_by_time(client: TestClient) -> None:
    assert "No alerts match." in client.get("/alerts", params={"since": "24h"}).text
    assert "No alerts match." not in client.get("/alerts", params={"since": ""}).text


def test_settings_show_notification_targets_without_webhook_secrets(
    client: TestClient, data_dir: Path
) -> None:
    (data_dir / "detect.toml").write_text(
        '[[notify.webhooks]]\nurl = "https://hooks.example.com/services/T0/B0/SECRETpath"\n'
        '[[notify.syslog]]\nhost = "siem.local"\nseverities = ["Critical"]\n'
    )
    page = client.get("/settings").text
    assert "hooks.example.com" in page
    assert "SECRETpath" not in page
    assert "udp://siem.local:514" in page


def test_pages_forbid_foreign_scripts_and_framing(client: TestClient) -> None:
    headers = client.get("/sources").headers
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-content-type-options"] == "nosniff"


def test_settings_list_rules_by_family_with_attack(client: TestClient) -> None:
    page = client.get("/settings").text
    assert '<tr class="family" data-family="keyvault"><th colspan="5">Key Vault' in page
    keyvault = page.split('data-family="keyvault"')[1].split('<tr class="family"')[0]
    assert "keyvault.vault_deleted" in keyvault
    assert "T1485" in keyvault
    assert "impact" in keyvault
    assert "auth.brute_force" not in keyvault
    entra = page.split('data-family="entra"')[1].split('<tr class="family"')[0]
    assert "auth.brute_force" in entra
    assert "entra.guest_invited" in entra


def test_coverage_page_hunts_an_imported_sigma_rule(client: TestClient, data_dir: Path) -> None:
    (data_dir / "rules").mkdir(exist_ok=True)
    (data_dir / "rules" / "failed.yml").write_text(
        "title: Failed password\nid: 0d4e5f60-7182-4a93-b4c5-d6e7f8091a2b\n"
        "tags: [attack.credential_access, attack.t1110.001]\n"
        "logsource: {product: azure, service: signinlogs}\n"
        "detection:\n  selection: {ResultType: 50126}\n  condition: selection\n"
    )
    rule = "sigma.0d4e5f60-7182-4a93-b4c5-d6e7f8091a2b"
    page = client.get("/coverage")
    assert f'<button type="button" class="hunt" data-rule="{rule}">' in page.text
    assert "T1110.001" in page.text
    hunted = client.post("/api/v1/rules/hunt", json={"rule": rule, "last": "90d"})
    assert hunted.status_code == 200
    assert hunted.json()["rules"] == [rule]
    leql = client.get(f"/api/v1/rules/{rule}/leql").json()["leql"]
    # Accepted as a search (answered, or still running on a loaded machine), not a 400.
    searched = client.post("/api/v1/search", json={"query": leql, "last": "24h"})
    assert searched.status_code in {200, 202}
    # Shipped Sigma rules are hunted too; built-in Python rules have no Sigma to hunt.
    shipped = "entra.break_glass_signin"
    assert f'<button type="button" class="hunt" data-rule="{shipped}">' in page.text
    assert f'<button type="button" class="leql" data-rule="{shipped}">' in page.text
    # A correlation is hunted but has no LEQL: no button that can only fail.
    many = "entra.failed_signins_many_accounts_one_address"
    assert f'<button type="button" class="hunt" data-rule="{many}">' in page.text
    assert f'class="leql" data-rule="{many}"' not in page.text
    assert 'data-rule="auth.password_spray"' not in page.text
    # A built-in rule that judges each event alone is hunted; it has no LEQL form.
    nsg = "network.nsg_rule_management_port"
    assert f'<button type="button" class="hunt" data-rule="{nsg}">' in page.text
    assert f'class="leql" data-rule="{nsg}"' not in page.text
    hunted = client.post("/api/v1/rules/hunt", json={"rule": nsg, "last": "90d"})
    assert (hunted.status_code, hunted.json()["rules"]) == (200, [nsg])
    hunted = client.post("/api/v1/rules/hunt", json={"rule": shipped, "last": "90d"})
    assert hunted.status_code == 200
    assert hunted.json()["rules"] == [shipped]


def test_hunt_and_leql_refusals_say_what_is_wrong(client: TestClient) -> None:
    # A built-in rule exists: it is Python, not Sigma (it was "no ... rule named").
    for answer in (
        client.post("/api/v1/rules/hunt", json={"rule": "auth.password_spray"}),
        client.get("/api/v1/rules/auth.password_spray/leql"),
    ):
        assert answer.status_code == 400
        assert "auth.password_spray is a built-in rule written in Python" in answer.json()["error"]
        assert "Sigma rule" in answer.json()["hint"]
    unknown = client.get("/api/v1/rules/no.such.rule/leql")
    assert (unknown.status_code, "named 'no.such.rule'" in unknown.json()["error"]) == (404, True)
    # Posted Sigma text that does not load is named as such, not as a temporary file's path.
    bad = client.post("/api/v1/rules/hunt", json={"sigma": "title: x"})
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("no rule of the Sigma text loads: document 1: ")
    assert "/tmp" not in bad.text
    assert "hunted.yml" not in bad.text
    # An unknown coverage format is refused with the choices, not answered as JSON.
    wrong = client.get("/api/v1/rules/coverage", params={"format": "xml"})
    assert wrong.status_code == 422
    assert "'json' or 'navigator'" in wrong.json()["problems"][0]["msg"]


def test_a_source_page_shows_lag_per_partition_and_events_per_minute(
    client: TestClient,
) -> None:
    service = service_of(client)
    service.catalog.add(
        make_source({"name": "azure", "profile": {"kind": "kafka", "bootstrap": "127.0.0.1:1"}})
    )
    health = service.health.setdefault("azure", SourceHealth("azure"))
    health.set_lag(
        [
            PartitionLag("hub", 1, 40, 45),
            PartitionLag("hub", 0, None, 12),
            PartitionLag("hub", 2, 7, None),
        ]
    )
    health.stored(3, 0, None)
    page = client.get("/sources/azure")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td>hub</td>(.*?)</tr>", page.text)
    cells = [re.findall(r'<td class="num">([^<]*)</td>', row) for row in rows]
    assert cells == [["0", "—", "12", "12"], ["1", "40", "45", "5"], ["2", "7", "—", "—"]]
    history = re.search(r'id="per-minute" data-history="([^"]*)"', page.text)
    assert history is not None
    minutes = json.loads(html.unescape(history.group(1)))
    assert (len(minutes), minutes[-1][1]) == (60, 3)
    # The list links each source to its page.
    assert 'href="/sources/azure"' in client.get("/sources").text
    missing = client.get("/sources/nope")
    assert missing.status_code == 404
    assert "no event source named" in missing.text.lower() or "nope" in missing.text
    assert 'href="/sources"' in missing.text


def test_data_collection_shows_detection_catching_up_beside_a_source(client: TestClient) -> None:
    service = service_of(client)
    service.catalog.add(
        make_source({"name": "azure", "profile": {"kind": "kafka", "bootstrap": "127.0.0.1:1"}})
    )
    health = service.health.setdefault("azure", SourceHealth("azure"))
    assert "detection-lag" not in client.get("/sources").text
    health.set_detection(DetectionLag(12345))
    for path in ("/sources", "/sources/azure"):
        (shown,) = re.findall(r'class="hint detection-lag">([^<]*)<', client.get(path).text)
        assert shown == "detection catching up: at least 12,345 events behind"


def test_log_search_lists_a_log_name_once_with_all_its_events(client: TestClient) -> None:
    # One source's records fall into several log sets under one log name.
    stored = [msgspec.structs.replace(e, log_name="demo-azure") for e in dataset.events()]
    stored.append(msgspec.structs.replace(stored[0], log_name="other", source_offset=10_000))
    service_of(client).store.write(stored)
    page = client.get("/search").text
    names = re.search(r'id="log-names">(.*?)</fieldset>', page, re.S)
    assert names is not None
    listed = re.findall(r'value="([^"]+)">[^<]*<span class="muted">([\d,]+)</span>', names[1])
    assert listed == [("demo-azure", f"{len(stored) - 1:,}"), ("other", "1")]
    assert len({e.log_set for e in stored}) > 1
