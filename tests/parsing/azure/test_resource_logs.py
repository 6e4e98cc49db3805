"""Graph activity, Key Vault and the common resource-log schema: the rules behind the samples."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from hubsight.parsing.azure.deps import KnownUsers
from hubsight.parsing.azure.firewall import action_result
from hubsight.parsing.azure.graph import decode_text_escapes, split_claim, status_result
from hubsight.parsing.azure.keyvault import object_of
from hubsight.parsing.azure.sql import MAX_STATEMENT, succeeded_result
from hubsight.parsing.azure.storage import auth_type, object_path

from tests.parsing.samples import parse_bytes, resource_record


def _graph(**props: Any) -> bytes:
    return resource_record("MicrosoftGraphActivityLogs", "Microsoft Graph Activity", props)


def _key_vault(signature: object, **props: Any) -> bytes:
    return resource_record(
        "AuditEvent", "SecretGet", props, resultType="Success", resultSignature=signature
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/users?$top=5\\u0026$select=id", "/users?$top=5&$select=id"),
        ("/users?$filter=a%20eq%20b", "/users?$filter=a%20eq%20b"),
        ("/a\\u002Fb", "/a/b"),
        ("/not-an-escape\\u00zz", "/not-an-escape\\u00zz"),
        (None, None),
    ],
)
def test_escapes_left_as_text_in_a_uri_are_decoded(text: str | None, expected: str | None) -> None:
    assert decode_text_escapes(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mail.Read  User.Read", ["Mail.Read", "User.Read"]),
        ("", None),
        ("   ", None),
        (["Directory.Read.All", ""], ["Directory.Read.All"]),
        (None, None),
    ],
)
def test_space_separated_claims_become_lists(
    value: str | list[str] | None, expected: list[str] | None
) -> None:
    assert split_claim(value) == expected


@pytest.mark.parametrize(
    ("status", "result"), [(200, "SUCCESS"), (399, "SUCCESS"), (400, "FAILED"), (None, None)]
)
def test_graph_result_is_the_status_class(status: int | None, result: str | None) -> None:
    assert status_result(status) == result


def test_known_users_resolve_ids_case_insensitively_and_stay_bounded() -> None:
    users = KnownUsers(limit=2)
    users.learn("AAAA", "a@contoso.com")
    users.learn("bbbb", "not-an-upn")  # not a UPN: nothing learned
    assert users.upn_of("aaaa") == "a@contoso.com"
    assert users.upn_of("bbbb") is None
    users.learn("cccc", "c@contoso.com")
    users.learn("dddd", "d@contoso.com")  # over the limit: the map starts again
    assert users.upn_of("aaaa") is None
    assert users.upn_of("dddd") == "d@contoso.com"


def test_graph_caller_without_a_sign_in_is_named_by_its_id_even_when_not_a_guid() -> None:
    (event,) = parse_bytes(_graph(userId="NOT-A-GUID", requestMethod="get", requestUri="/me"))
    assert event["log_set"] == "Cloud Service Activity"
    assert event["user"] == "not-a-guid"
    assert event["user_id"] == "not-a-guid"
    assert event["http_method"] == "GET"
    # No timeGenerated: the record's own time, never the receive time.
    assert event["timestamp"] == "2025-11-10T10:05:00Z"


def test_graph_properties_sent_as_a_string_are_read() -> None:
    props = msgspec.json.encode({"responseStatusCode": "404", "servicePrincipalId": "SP1"})
    record = msgspec.json.encode(
        {"time": "2025-11-10T10:05:00Z", "category": "MicrosoftGraphActivityLogs",
         "properties": props.decode()}
    )  # fmt: skip
    (event,) = parse_bytes(record)
    assert (event["http_status"], event["result"]) == (404, "FAILED")
    assert (event["service_principal_id"], event["actor_type"]) == ("sp1", "service_principal")
    assert event.get("user") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://kv1.vault.azure.net/secrets/db/0a1b", ("kv1", "secret", "db")),
        ("https://kv1.vault.azure.net/keys/cmk", ("kv1", "key", "cmk")),
        ("https://kv1.vault.azure.net/certificates/tls/", ("kv1", "certificate", "tls")),
        ("https://kv1.vault.azure.net/", ("kv1", None, None)),
        ("https://kv1.vault.azure.net/secrets", ("kv1", None, None)),
        (None, (None, None, None)),
    ],
)
def test_key_vault_object_from_its_url(
    url: str | None, expected: tuple[str | None, str | None, str | None]
) -> None:
    assert object_of(url) == expected


@pytest.mark.parametrize(
    ("signature", "props", "status", "result"),
    [
        ("OK", {}, 200, "SUCCESS"),
        ("Forbidden", {}, 403, "FAILED"),
        ("TooManyRequests", {}, 429, "FAILED"),
        ("OK", {"httpStatusCode": 401}, 401, "FAILED"),
        ("404", {}, 404, "FAILED"),
        # Neither a known signature nor a status: the resultType decides.
        ("Unheard", {}, None, "SUCCESS"),
    ],
)
def test_key_vault_result_from_status_or_signature(
    signature: str, props: dict[str, Any], status: int | None, result: str
) -> None:
    (event,) = parse_bytes(_key_vault(signature, **props))
    assert event.get("http_status") == status
    assert event["result"] == result
    assert (event.get("failure_reason") is not None) == (result == "FAILED")


def test_resource_log_without_any_time_falls_back_to_the_broker_not_the_record() -> None:
    record = b'{"category": "OperationalLogs", "operationName": "Create", "resourceId": "/x"}'
    (event,) = parse_bytes(record)
    assert event["log_set"] == "Cloud Service Activity"
    assert event["timestamp"] == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("keys", "log_set"),
    [
        # No operation name: a time and a resource together are the common shape (App Service
        # HTTP logs); either alone is not enough to claim a record.
        (
            '"time": "2025-11-19T22:41:07Z", "resourceId": "/x/providers/Microsoft.Web/sites/a"',
            "Cloud Service Activity",
        ),
        ('"time": "2025-11-19T22:41:07Z"', "Unparsed Data"),
        # Event Hubs' operational logs: the time as EventTimeString.
        (
            '"EventTimeString": "11/14/2025 9:21:36 AM +00:00", "resourceId": "/x"',
            "Cloud Service Activity",
        ),
        ('"EventTimeString": "11/14/2025 9:21:36 AM +00:00"', "Unparsed Data"),
        ('"resourceId": "/x/providers/Microsoft.Web/sites/a"', "Unparsed Data"),
        # With an operation name, either one is enough.
        ('"time": "2025-11-19T22:41:07Z", "operationName": "x"', "Cloud Service Activity"),
        ('"resourceId": "/x", "operationName": "x"', "Cloud Service Activity"),
        ('"operationName": "x"', "Unparsed Data"),
    ],
)
def test_unclaimed_category_is_read_when_it_has_the_common_shape(keys: str, log_set: str) -> None:
    record = ('{"category": "SomeNewServiceLogs", ' + keys + ', "properties": {}}').encode()
    (event,) = parse_bytes(record)
    assert event["log_set"] == log_set


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        # A top-level caller address wins over the one in properties.
        ({"CIp": "198.51.100.1"}, {"source_ip": "203.0.113.9"}),
        ({"ScStatus": "503"}, {"http_status": 503, "result": "FAILED"}),
        ({"ScStatus": 302}, {"http_status": 302, "result": "SUCCESS"}),
        ({"ScStatus": 399}, {"http_status": 399, "result": "SUCCESS"}),
        ({"ScStatus": 400}, {"http_status": 400, "result": "FAILED"}),
        ({"Result": "Fail", "ScStatus": 200}, {"result": "FAILED"}),
        ({"CsUsername": "CONTOSO\\bob"}, {"user": "contoso\\bob", "account": "bob"}),
        ({"User": "-"}, {"user": None, "account": None}),
        ({}, {"result": None, "http_status": None}),
        # App Service platform logs name the worker machine "host": not the request's host.
        ({"host": "RD0003FF4C1A2B"}, {"fqdn": None}),
        ({"hostName": "app.contoso.com", "CsHost": "x"}, {"fqdn": "x"}),
    ],
)
def test_request_fields_under_service_names_in_properties(
    props: dict[str, Any], expected: dict[str, Any]
) -> None:
    record = {
        "time": "2025-11-19T22:41:07Z",
        "resourceId": "/subscriptions/s/providers/Microsoft.Web/sites/app",
        "category": "AppServiceHTTPLogs",
        "callerIpAddress": "203.0.113.9",
        "properties": props,
    }
    (event,) = parse_bytes(msgspec.json.encode(record))
    assert {key: event.get(key) for key in expected} == expected


@pytest.mark.parametrize(
    ("props", "address", "port"),
    [
        # Front Door and Application Gateway access logs give the client's port apart.
        ({"clientIp": "198.51.100.1", "clientPort": "50123"}, "198.51.100.1", 50123),
        ({"clientIP": "198.51.100.1:444", "clientPort": "50123"}, "198.51.100.1", 444),
        ({"clientPort": "50123"}, None, None),
        ({"UserAddress": "not an address", "clientPort": 1}, None, None),
    ],
)
def test_client_address_and_port_from_properties(
    props: dict[str, Any], address: str | None, port: int | None
) -> None:
    record = resource_record(
        "FrontDoorAccessLog", "Microsoft.Cdn/Profiles/AccessLog/Write", props, resourceId="/x"
    )
    (event,) = parse_bytes(record)
    assert (event.get("source_ip"), event.get("source_port")) == (address, port)


def test_resource_log_time_in_properties_is_the_event_time() -> None:
    record = (
        b'{"resourceId": "/subscriptions/s/providers/Microsoft.Sql/servers/db1", '
        b'"category": "Errors", "operationName": "x", '
        b'"properties": {"event_time": "2025-11-14T08:00:00Z"}}'
    )
    (event,) = parse_bytes(record)
    assert event["timestamp"] == "2025-11-14T08:00:00Z"
    assert (event["service"], event["target_resource"]) == ("Microsoft.Sql", "db1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("OAuth", "OAuth"),
        ("SAS Key", "SAS"),
        ("TrustedAccessSAS", "SAS"),
        ("Account Key", "AccountKey"),
        ("anonymous", "Anonymous"),
        ("Kerberos", "Kerberos"),
        ("SomethingNew", "SomethingNew"),
        (None, None),
    ],
)
def test_storage_authorization_types_have_one_name_each(
    value: str | None, expected: str | None
) -> None:
    assert auth_type(value) == expected


@pytest.mark.parametrize(
    ("key", "uri", "expected"),
    [
        ('"/acct/c/b%201.txt"', None, "/c/b 1.txt"),
        ("/other/c/b", None, "/other/c/b"),
        (None, "https://acct.blob.core.windows.net:443/c/b?comp=x", "/c/b"),
        (None, "https://acct.blob.core.windows.net/", None),
        (None, None, None),
    ],
)
def test_storage_object_path_from_key_else_uri(
    key: str | None, uri: str | None, expected: str | None
) -> None:
    assert object_path(key, uri, "acct") == expected


@pytest.mark.parametrize(
    ("action", "result"),
    [("Allow", "ALLOWED"), ("Deny", "DENIED"), ("Blocked", "DENIED"), ("Log", "DETECTED"),
     ("Matched", "DETECTED"), ("Dnat", "ALLOWED")],
)  # fmt: skip
def test_firewall_result_from_its_action(action: str, result: str) -> None:
    assert action_result(action) == result


def test_firewall_message_that_is_not_a_flow_keeps_its_text_only() -> None:
    record = (
        b'{"time": "2025-11-16T10:00:00Z", "category": "AzureFirewallNetworkRule", '
        b'"operationName": "AzureFirewallNetworkRuleLog", "properties": {"msg": "Health probe"}}'
    )
    (event,) = parse_bytes(record)
    assert event["log_set"] == "Firewall Activity"
    assert event["description"] == "Health probe"
    assert "source_ip" not in event
    assert "action" not in event


def test_kube_audit_event_that_is_not_json_keeps_the_common_fields() -> None:
    record = (
        b'{"time": "2025-11-16T10:00:00Z", "category": "kube-audit", "operationName": "x", '
        b'"resourceId": "/subscriptions/s/resourceGroups/r/providers/'
        b'Microsoft.ContainerService/managedClusters/aks1", "properties": {"log": "I1116 plain"}}'
    )
    (event,) = parse_bytes(record)
    assert event["log_set"] == "Cloud Service Admin Activity"
    assert event["timestamp"] == "2025-11-16T10:00:00Z"
    assert "user" not in event


@pytest.mark.parametrize(
    ("length", "kept"), [(MAX_STATEMENT, MAX_STATEMENT), (MAX_STATEMENT + 1, MAX_STATEMENT)]
)
def test_sql_statement_is_truncated_at_its_limit(length: int, kept: int) -> None:
    record = msgspec.json.encode(
        {"time": "2025-11-18T02:00:00Z", "category": "SQLSecurityAuditEvents",
         "operationName": "AuditEvent",
         "properties": {"statement": "x" * length, "succeeded": "maybe"}}
    )  # fmt: skip
    (event,) = parse_bytes(record)
    assert len(event["statement"]) == kept
    assert "result" not in event  # neither true nor false: no result rather than a wrong one


@pytest.mark.parametrize(
    ("value", "result"),
    [(True, "SUCCESS"), ("false", "FAILED"), (" TRUE ", "SUCCESS"), ("", None), (1, None)],
)
def test_sql_succeeded_flag(value: object, result: str | None) -> None:
    assert succeeded_result(value) == result
