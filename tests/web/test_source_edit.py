"""Editing an event source over the API: PUT and PATCH keep secrets, dry runs, edited tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hubsight.devbroker import LocalBroker
from hubsight.sources.config import EventHubsProfile, KafkaProfile
from hubsight.store.catalog import Catalog
from hubsight.store.users import UserStore
from hubsight.web.api import create_app, merge_patch
from hubsight.web.auth import ConsoleAuth

from tests.support import (
    FAST_HASH,
    FAST_TUNING,
    PLANTED_PASSWORD,
    assert_no_secret,
    connection_string,
    create_topic,
    kafka_source,
    produce,
    service_of,
    serving,
    state_of,
    stored_count,
    wait_until,
)

HOST = "contoso-logs.servicebus.windows.net"
URL = "/api/v1/event-sources/azure-prod"


def _catalog(client: TestClient) -> Catalog:
    return service_of(client).catalog


def _add_eventhubs(client: TestClient) -> None:
    profile = {"kind": "eventhubs", "server": HOST, "connection_string": connection_string()}
    body = {"name": "azure-prod", "profile": profile, "default_domain": "contoso.com"}
    assert client.post("/api/v1/event-sources", json=body).status_code == 201


def _stored_secret(client: TestClient) -> str:
    profile = _catalog(client).get("azure-prod").profile
    assert isinstance(profile, EventHubsProfile)
    return profile.connection_string.get_secret_value()


def test_put_with_an_empty_secret_keeps_the_stored_one(client: TestClient) -> None:
    _add_eventhubs(client)
    body: dict[str, Any] = {
        "profile": {"kind": "eventhubs", "server": HOST, "connection_string": ""},
        "topics": ["insights-logs-signinlogs"],
        "keep_unparsed": True,
    }
    answer = client.put(URL, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["profile"]["connection_string"] == "(set)"
    stored = _catalog(client).get("azure-prod")
    assert (stored.topics, stored.keep_unparsed) == (["insights-logs-signinlogs"], True)
    assert _stored_secret(client) == connection_string()
    assert_no_secret(answer.text)


def test_a_new_namespace_with_the_stored_secret_is_refused_without_echoing_it(
    client: TestClient,
) -> None:
    _add_eventhubs(client)
    body = {"profile": {"kind": "eventhubs", "server": "other-ns.servicebus.windows.net"}}
    answer = client.put(URL, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "the connection string is for contoso-logs.servicebus.windows.net but the "
        "server is other-ns.servicebus.windows.net"
    )
    assert_no_secret(answer.text)
    body["profile"]["connection_string"] = connection_string("other-ns.servicebus.windows.net")
    assert client.put(URL, json=body).status_code == 200
    assert "other-ns" in _stored_secret(client)


def test_a_dry_run_validates_without_saving(client: TestClient) -> None:
    _add_eventhubs(client)
    before = _catalog(client).versions()
    body = {"profile": {"kind": "eventhubs", "server": HOST}, "topics": ["elsewhere"]}
    checked = client.put(URL + "?dry_run=true", json=body)
    assert (checked.status_code, checked.json()["topics"]) == (200, ["elsewhere"])
    bad = client.put(URL + "?dry_run=true", json={**body, "topic_pattern": "(unclosed"})
    assert bad.status_code == 400
    assert "is not a valid regex" in bad.json()["error"]
    patched = client.patch(URL + "?dry_run=true", json={"enabled": False})
    assert patched.json()["enabled"] is False
    assert _catalog(client).versions() == before
    assert _catalog(client).get("azure-prod").topics == ["insights-operational-logs"]


def test_patch_changes_only_what_it_names(client: TestClient) -> None:
    _add_eventhubs(client)
    off = client.patch(URL, json={"enabled": False, "default_domain": None})
    assert off.status_code == 200, off.text
    stored = _catalog(client).get("azure-prod")
    assert (stored.enabled, stored.default_domain, stored.profile.kind) == (
        False,
        None,
        "eventhubs",
    )
    assert _stored_secret(client) == connection_string()
    tuned = client.patch(URL, json={"tuning": {"session_timeout_ms": 12_000}})
    tuning = _catalog(client).get("azure-prod").tuning
    assert (tuned.status_code, tuning.session_timeout_ms, tuning.metadata_max_age_ms) == (
        200,
        12_000,
        180_000,
    )
    renamed = client.patch(URL, json={"name": "other"})
    assert (renamed.status_code, renamed.json()["error"]) == (400, "a source cannot be renamed")
    # Another kind replaces the profile; the Event Hubs secret does not carry over.
    relay = {"kind": "kafka", "bootstrap": "relay:9092", "sasl": "plain", "username": "u"}
    refused = client.patch(URL, json={"profile": relay})
    assert refused.status_code == 400
    assert "needs a username and a password" in refused.json()["error"]
    moved = client.patch(URL, json={"profile": {**relay, "password": PLANTED_PASSWORD}})
    assert moved.status_code == 200
    profile = _catalog(client).get("azure-prod").profile
    assert isinstance(profile, KafkaProfile)
    assert profile.password is not None
    assert profile.password.get_secret_value() == PLANTED_PASSWORD
    assert_no_secret(moved.text)


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    patch = {"a": None, "b": {"c": None, "x": 1}, "e": [2], "f": {"g": None}}
    assert merge_patch(target, patch) == {"b": {"d": 3, "x": 1}, "e": [2], "f": {"g": None}}
    assert target == {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}


def test_edited_settings_are_tested_without_saving_and_by_admins_only(
    data_dir: Path, client: TestClient
) -> None:
    catalog = _catalog(client)
    catalog.add(kafka_source("relay", "127.0.0.1:1", "t"))
    edited = {"profile": {"kind": "kafka", "bootstrap": "127.0.0.1:2"}, "topics": ["t"]}
    result = client.post("/api/v1/event-sources/relay/test", json=edited).json()
    tcp = next(s for s in result["steps"] if s["step"] == "tcp")
    assert (result["ok"], tcp["status"]) == (False, "failed")
    assert "127.0.0.1:2" in tcp["detail"]
    assert catalog.get("relay").profile.bootstrap == "127.0.0.1:1"
    new = {"name": "new-relay", **edited}
    unsaved = client.post("/api/v1/event-sources/test", json=new).json()
    assert (unsaved["name"], unsaved["ok"], unsaved["steps"][1]["status"]) == (
        "new-relay",
        False,
        "failed",
    )
    assert [c.name for c in catalog.all()] == ["relay"]
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("ana", "analyst passphrase", "analyst")
    signed = TestClient(create_app(service_of(client), auth=ConsoleAuth(users)))
    analyst = {"Authorization": f"Bearer {users.issue_token('ana', 't')}"}
    for url, body in [("relay/test", edited), ("test", new)]:
        refused = signed.post(f"/api/v1/event-sources/{url}", json=body, headers=analyst)
        assert refused.status_code == 403, url
        assert refused.json()["error"] == "the analyst role cannot change this"
    stored = signed.post("/api/v1/event-sources/relay/test", headers=analyst)
    assert stored.status_code == 200
    assert stored.json()["name"] == "relay"
    for method in ("PUT", "PATCH"):
        changed = signed.request(method, "/api/v1/event-sources/relay", json={}, headers=analyst)
        assert changed.status_code == 403, method
    page = signed.get("/sources", headers=analyst).text
    # An analyst tests the stored settings but is offered no Edit.
    assert 'data-test="relay"' in page
    assert "data-edit=" not in page
    assert 'id="edit-template"' not in page


@pytest.mark.integration
def test_the_running_collector_takes_an_edit_live(data_dir: Path, broker: LocalBroker) -> None:
    topic = create_topic(broker.bootstrap)
    produce(broker.bootstrap, topic, [b'{"category": "SignInLogs"}'] * 20)
    source = kafka_source("relay", broker.bootstrap, "no-such-topic")
    with serving(data_dir, source) as service, TestClient(create_app(service)) as client:
        wait_until(lambda: state_of(service, "relay").get("state") == "error", 30, "the error")
        assert "topic" in (state_of(service, "relay")["hint"] or "")
        answer = client.patch("/api/v1/event-sources/relay", json={"topics": [topic]})
        assert answer.status_code == 200, answer.text
        wait_until(lambda: stored_count(service, "relay") == 20, 30, "the 20 records")
        health = state_of(service, "relay")
        # Once the 20 records are stored the consumer may already be idle at the end of the topic.
        assert health["state"] in ("running", "waiting for data")
        assert (health["last_error"], health["hint"]) == (None, None)
        assert (
            service.catalog.get("relay").tuning.session_timeout_ms
            == (FAST_TUNING["session_timeout_ms"])
        )


def test_a_stored_password_never_follows_a_new_bootstrap(client: TestClient) -> None:
    sasl = {"sasl": "plain", "username": "hubsight", "password": PLANTED_PASSWORD}
    source = kafka_source("relay", "kafka.contoso.com:9093", "azure", profile=sasl)
    _catalog(client).add(source)
    url = "/api/v1/event-sources/relay"
    elsewhere = {"profile": {"bootstrap": "attacker.example:9093"}}
    for method in ("PATCH", "PUT"):
        body = elsewhere if method == "PATCH" else source.public() | elsewhere
        if method == "PUT":
            body["profile"] = {k: v for k, v in source.public()["profile"].items() if v != "(set)"}
            body["profile"]["bootstrap"] = "attacker.example:9093"
        moved = client.request(method, url, json=body)
        assert moved.status_code == 422, (method, moved.text)
        assert moved.json()["error"] == (
            "the address changed to attacker.example:9093: enter password again"
        )
        assert_no_secret(moved.text)
    tested = client.post(f"{url}/test", json={"profile": {"kind": "kafka", **elsewhere["profile"]}})
    assert tested.status_code == 422  # nor is it tried against the new address
    assert _catalog(client).get("relay").profile.bootstrap == "kafka.contoso.com:9093"
    kept = client.patch(url, json={"topics": ["other"]})
    assert kept.status_code == 200
    retyped = {"profile": {"bootstrap": "kafka2.contoso.com:9093", "password": "new password"}}
    assert client.patch(url, json=retyped).status_code == 200
    profile = _catalog(client).get("relay").profile
    assert isinstance(profile, KafkaProfile)
    assert profile.password is not None
    assert profile.password.get_secret_value() == "new password"
