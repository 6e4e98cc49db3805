"""The event-source REST API: CRUD with write-only secrets, health, tests, OpenAPI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hubsight.devbroker import LocalBroker

from tests.support import (
    PLANTED_KEY,
    assert_no_secret,
    connection_string,
    connection_string_of,
    produce,
    service_of,
)

HOST = "contoso-logs.servicebus.windows.net"


def _eventhubs(name: str = "azure-prod", **overrides: object) -> dict[str, object]:
    return {
        "name": name,
        "profile": {"kind": "eventhubs", "server": HOST, "connection_string": connection_string()},
        **overrides,
    }


def test_create_read_update_delete_without_ever_returning_the_secret(client: TestClient) -> None:
    created = client.post("/api/v1/event-sources", json=_eventhubs(keep_unparsed=True))
    assert created.status_code == 201
    assert created.json()["profile"]["connection_string"] == "(set)"
    assert created.json()["health"]["state"] == "starting"
    assert client.post("/api/v1/event-sources", json=_eventhubs()).status_code == 409
    listed = client.get("/api/v1/event-sources")
    assert [s["name"] for s in listed.json()] == ["azure-prod"]
    updated = client.put(
        "/api/v1/event-sources/azure-prod",
        json={
            "profile": {"kind": "eventhubs", "server": HOST},
            "topics": ["insights-logs-auditlogs"],
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["topics"] == ["insights-logs-auditlogs"]
    kept = service_of(client).catalog.get("azure-prod")
    assert connection_string_of(kept) == connection_string()
    health = client.get("/api/v1/event-sources/azure-prod/health").json()
    assert set(health) >= {"state", "events_stored", "last_event_time", "lag", "last_error", "hint"}
    assert client.delete("/api/v1/event-sources/azure-prod").status_code == 204
    gone = client.get("/api/v1/event-sources/azure-prod")
    assert gone.status_code == 404
    assert gone.json()["hint"] == "`hubsight source list` shows the sources"
    for response in (created, listed, updated):
        assert_no_secret(response.text)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (
            _eventhubs(profile={"kind": "eventhubs", "server": HOST, "connection_string": "x=y"}),
            400,
            "no Endpoint",
        ),
        (_eventhubs(name="bad/name"), 400, "name must start"),
        (_eventhubs(topics="not-a-list"), 400, "topics"),
        ({"name": "k", "profile": {"kind": "mystery"}}, 400, "profile"),
    ],
)
def test_invalid_sources_are_refused_without_echoing_input(
    client: TestClient, body: dict[str, object], status: int, needle: str
) -> None:
    response = client.post("/api/v1/event-sources", json=body)
    assert response.status_code == status
    assert needle in response.json()["error"]
    assert_no_secret(response.text)


def test_sas_token_is_refused_with_a_hint(client: TestClient) -> None:
    token = f"Endpoint=sb://{HOST}/;SharedAccessSignature=SharedAccessSignature sig={PLANTED_KEY}"
    body = _eventhubs(profile={"kind": "eventhubs", "server": HOST, "connection_string": token})
    response = client.post("/api/v1/event-sources", json=body)
    assert response.status_code == 400
    assert "SAS token" in response.json()["error"]
    assert "Connection string-primary key" in response.json()["hint"]
    assert_no_secret(response.text)


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/api/v1/event-sources" in spec["paths"]
    assert "/api/v1/event-sources/{name}/health" in spec["paths"]
    assert "SourceConfig" in spec["components"]["schemas"]
    # Swagger UI would load its scripts from a CDN: not offered in an air-gapped console.
    assert client.get("/docs").status_code == 404
    assert client.post("/api/v1/event-sources", content=b"{not json").status_code == 400


@pytest.mark.integration
def test_connection_test_endpoint(client: TestClient, broker: LocalBroker, topic: str) -> None:
    produce(broker.bootstrap, topic, [b'{"category": "SignInLogs"}'])
    body = {
        "name": "relay",
        "profile": {"kind": "kafka", "bootstrap": broker.bootstrap},
        "topics": [topic],
    }
    assert client.post("/api/v1/event-sources", json=body).status_code == 201
    result = client.post("/api/v1/event-sources/relay/test").json()
    assert result["ok"] is True
    assert [s["step"] for s in result["steps"]] == [
        "dns",
        "tcp",
        "tls",
        "sasl",
        "topic",
        "first_message",
    ]


def test_a_source_missing_its_fields_is_told_which_a_source_has(client: TestClient) -> None:
    # The error named the missing field and the hint was null.
    missing = client.post("/api/v1/event-sources", json={"name": "x"})
    assert missing.status_code == 400
    assert missing.json()["error"] == "profile: Field required"
    assert 'kind "eventhubs" with server and connection_string' in missing.json()["hint"]
    wrong_kind = client.post("/api/v1/event-sources", json={"name": "x", "profile": {"kind": "eh"}})
    assert "'eventhubs', 'kafka'" in wrong_kind.json()["error"]
    assert "/openapi.json" in wrong_kind.json()["hint"]


def _kafka_source(name: str, bootstrap: str) -> dict[str, object]:
    return {"name": name, "profile": {"kind": "kafka", "bootstrap": bootstrap}}


def test_the_api_refuses_a_bad_bootstrap_with_400_and_the_same_words(client: TestClient) -> None:
    added = client.post("/api/v1/event-sources", json=_kafka_source("relay", "host:0"))
    assert added.status_code == 400
    assert "bootstrap server 'host:0': port 0 is not between 1 and 65535" in added.json()["error"]
    assert "e.g. kafka-1:9092" in added.json()["error"]
    assert (
        client.post("/api/v1/event-sources", json=_kafka_source("relay", "k1:9092")).status_code
        == 201
    )
    edited = client.put(
        "/api/v1/event-sources/relay", json={"profile": {"kind": "kafka", "bootstrap": "k1:"}}
    )
    assert (edited.status_code, "the port is missing" in edited.json()["error"]) == (400, True)
    tried = client.post("/api/v1/event-sources/test", json=_kafka_source("try", ":9092"))
    assert (tried.status_code, "has no host name" in tried.json()["error"]) == (400, True)


def test_a_parameter_out_of_range_is_a_422_whose_hint_names_it(client: TestClient) -> None:
    refused = client.get("/api/v1/audit", params={"limit": 5000})
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid request"
    assert refused.json()["hint"] == (
        "limit (query): Input should be less than or equal to 1000 "
        "(/openapi.json lists each request's parameters)"
    )


def test_an_error_says_whether_the_input_is_at_fault(client: TestClient) -> None:
    # The CLI asking the running service exits 2 for these, as it does alone; the body is as it was.
    refused = client.post("/api/v1/event-sources", json=_kafka_source("relay", "host:0"))
    assert (refused.status_code, refused.headers["x-hubsight-error"]) == (400, "usage")
    assert set(refused.json()) == {"error", "hint"}
    out_of_range = client.get("/api/v1/audit", params={"limit": 0})
    assert (out_of_range.status_code, out_of_range.headers["x-hubsight-error"]) == (422, "usage")
    missing = client.get("/api/v1/event-sources/nowhere")
    assert (missing.status_code, missing.headers["x-hubsight-error"]) == (404, "failure")
