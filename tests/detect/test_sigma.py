"""Sigma rules: the load report, predicates on raw Azure records, import and replay end to end.

``sigma_rules/shapes`` holds our own rules, one folder per azure logsource service, written from
Microsoft's record schemas to cover each field-naming style, modifier and refusal reason of real
azure rules (see its README.md); ``sigma_rules/own`` holds small rules for the other reasons.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubsight.cli.main import cli
from hubsight.detect.base import EventKind, example_event
from hubsight.detect.sigma import LOADED, SigmaDetection, SigmaLoad, load_sigma_rules
from hubsight.parsing.event import Event, LogSet

from tests.detect.context import NoContext

RULES = Path(__file__).parent / "sigma_rules"
SHAPES = RULES / "shapes"
OWN = RULES / "own"
AZURE = Path(__file__).parents[1] / "data" / "azure"

_SUPPORTED = (
    "(supported: azure/activitylogs, azure/auditlogs, azure/graphactivitylogs, azure/keyvault, "
    "azure/kubeaudit, azure/pim, azure/riskdetection, azure/signinlogs)"
)
_PIM_ALERTS = (
    "PIM's security alerts (riskEventType) live in Privileged Identity Management and Microsoft "
    "Graph only: diagnostic settings export PIM's activity as audit records, never its alerts, so "
    "no Event Hub record carries them"
)

# Every shapes rule: LOADED, or the exact reason it is not.
SHAPES_EXPECTED = {
    "admin_password_reset.yml": LOADED,
    "administrator_role_by_name.yml": LOADED,
    "aks_admin_credentials.yml": LOADED,
    "anonymous_or_malicious_address.yml": LOADED,
    "app_password_credential_added.yml": LOADED,
    "atypical_travel.yml": LOADED,
    "conditional_access_policy_deleted.yml": LOADED,
    "device_code_sign_in.yml": LOADED,
    "device_join_without_mfa.yml": LOADED,
    "disk_export_keywords.yml": LOADED,
    "domain_authentication_set.yml": LOADED,
    "elevate_access.yml": LOADED,
    "hybrid_health_adfs_removed.yml": LOADED,
    "key_vault_removed.yml": LOADED,
    "leaked_credentials_high.yml": LOADED,
    "legacy_client_sign_in.yml": LOADED,
    "mfa_not_completed.yml": LOADED,
    "mfa_push_denied.yml": LOADED,
    "nsg_rule_changed.yml": LOADED,
    "owner_granted_on_subscription.yml": LOADED,
    "permanent_assignment_outside_pim.yml": LOADED,
    "pim_alert_redundant_assignments.yml": _PIM_ALERTS,
    "pim_alert_stale_accounts.yml": _PIM_ALERTS,
    "privileged_role_granted.yml": LOADED,
    "risky_sign_in_unmanaged.yml": LOADED,
    "scripted_client_sign_in.yml": LOADED,
    "security_info_registered_by_admin.yml": LOADED,
    "single_factor_unregistered_device.yml": LOADED,
    "smart_lockout.yml": LOADED,
    "tenant_wide_admin_consent.yml": LOADED,
    "unfamiliar_properties_at_risk.yml": LOADED,
    "user_created.yml": LOADED,
}

OWN_EXPECTED = {
    "disabled_account.yml": LOADED,
    "federation.yml": LOADED,
    "single_factor.yml": LOADED,
    "windows_only.yml": f"logsource product 'windows' is not azure {_SUPPORTED}",
    "other_service.yml": f"logsource service 'storage' is not supported {_SUPPORTED}",
    # A correlation of disabled_account.yml's rule (generate: true keeps that rule's alerts).
    "correlation.yml": LOADED,
    "hour_of_day.yml": "the |hour modifier is not supported by hubsight",
    "placeholder.yml": (
        "the placeholder in '%admin_networks%' (|expand) is not supported by hubsight"
    ),
    "two_rules.yml": LOADED,
    "two_rules.yml#2": LOADED,
    "empty.yml": "no Sigma rule in the file",
    "no_product.yml": f"logsource has no product {_SUPPORTED}",
}


@pytest.fixture(scope="module")
def shapes() -> dict[str, SigmaLoad]:
    return {load.path.name: load for load in load_sigma_rules(SHAPES)}


def test_every_shapes_rule_has_an_expectation(shapes: dict[str, SigmaLoad]) -> None:
    assert sorted(shapes) == sorted(SHAPES_EXPECTED)


@pytest.mark.parametrize("name", sorted(SHAPES_EXPECTED))
def test_shapes_rule_loads_or_says_why(shapes: dict[str, SigmaLoad], name: str) -> None:
    load = shapes[name]
    assert load.reason == SHAPES_EXPECTED[name]
    assert (load.rule is not None) is (load.reason == LOADED)
    assert load.rule_id is not None
    assert load.rule_id.startswith("sigma.")


def test_own_rules_load_or_say_why() -> None:
    loads = {_name(load): load for load in load_sigma_rules(OWN)}
    reasons = {name: load.reason for name, load in loads.items() if name != "broken.yml"}
    assert reasons == OWN_EXPECTED
    assert loads["broken.yml"].reason.startswith("not a valid Sigma rule: while parsing")
    assert "line 2, column 12" in loads["broken.yml"].reason
    assert loads["broken.yml"].rule_id is None


def _name(load: SigmaLoad) -> str:
    # Documents after a file's first are named by their place in it.
    return load.path.name + (f"#{load.document}" if load.document > 1 else "")


def test_rule_metadata_comes_from_the_sigma_rule(shapes: dict[str, SigmaLoad]) -> None:
    rule = shapes["smart_lockout.yml"].rule
    assert rule is not None
    meta = rule.meta
    assert meta.id == "sigma.f074c60a-dfc0-4857-a600-272ad50b0e89"
    assert meta.title == "Sign-in Refused by Smart Lockout"
    assert meta.severity == "Medium"
    assert meta.technique == "T1110"
    assert meta.log_sets == {LogSet.INGRESS_AUTHENTICATION, LogSet.SSO_AUTHENTICATION}


# Predicates on raw records.


def _record(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((AZURE / path).read_text("utf-8"))
    return data


def _rule(tmp_path: Path, detection: dict[str, Any], service: str = "signinlogs") -> SigmaDetection:
    doc = {
        "title": "Test",
        "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
        "logsource": {"product": "azure", "service": service},
        "detection": {**detection, "condition": "selection"},
    }
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump(doc), "utf-8")
    (load,) = load_sigma_rules(tmp_path)
    assert isinstance(load.rule, SigmaDetection), load.reason
    return load.rule


def _event(record: dict[str, Any] | bytes, **fields: Any) -> Event:
    raw = record if isinstance(record, bytes) else msgspec.json.encode(record)
    fields.setdefault("log_set", LogSet.INGRESS_AUTHENTICATION)
    fields.setdefault("category", "SignInLogs")
    fields.setdefault("user", "alice.martin@contoso.com")
    return example_event(fields.pop("log_set"), raw=raw, **fields)


def _fires(rule: SigmaDetection, event: Event) -> bool:
    findings = list(rule.evaluate(event, NoContext()))
    assert len(findings) <= 1
    return bool(findings)


SUCCESS = "SignInLogs/success-mfa-push.json"


@pytest.mark.parametrize(
    ("selection", "fires"),
    [
        ({"AppDisplayName": "microsoft office 365 portal"}, True),
        ({"AppDisplayName|cased": "microsoft office 365 portal"}, False),
        ({"AppDisplayName": "Microsoft*365 Portal"}, True),
        ({"AppDisplayName": "Microsoft*365"}, False),
        ({"UserAgent|contains": "edg/131"}, True),
        ({"UserAgent|startswith": "Mozilla/5.0 (Windows"}, True),
        ({"UserAgent|endswith": "Safari/537.36"}, False),
        ({"UserAgent|re": r"Edg/1[0-9]{2}\."}, True),
        ({"UserAgent|re": r"^Edg/"}, False),
        ({"ResourceDisplayName": ["Azure Portal", "OFFICE 365 EXCHANGE ONLINE"]}, True),
        ({"ResourceDisplayName": ["Azure Portal", "Microsoft Graph"]}, False),
        ({"ResultType": 0}, True),
        ({"ResultType": 50126}, False),
        ({"ProcessingTimeInMilliseconds|gte": 182}, True),
        ({"ProcessingTimeInMilliseconds|lt": 182}, False),
        ({"IPAddress|cidr": "81.2.69.0/24"}, True),
        ({"IPAddress|cidr": "10.0.0.0/8"}, False),
        ({"DeviceDetail.isCompliant": False}, True),
        ({"DeviceDetail.isCompliant": "false"}, True),
        ({"DeviceDetail.isCompliant": True}, False),
        ({"DeviceDetail.trusttype": ""}, True),
        ({"DeviceDetail.operatingSystem|exists": True}, True),
        ({"MfaDetail|exists": True}, False),
        ({"ServicePrincipalName": None}, True),
        ({"RiskDetail": None}, False),
        ({"NetworkLocationDetails": "[]"}, True),
        ({"AuthenticationDetails.authenticationMethod": "Mobile app notification"}, True),
        ({"AuthenticationDetails|contains": '"succeeded":true'}, True),
        ({"UserPrincipalName|fieldref": "SignInIdentifier"}, True),
        ({"UserPrincipalName|fieldref": "UserDisplayName"}, False),
        ({"Status": "Success"}, True),
        ({"Status": "Failure"}, False),
        ({"Location": "GB"}, True),
        ({"LocationDetails.countryOrRegion": "GB"}, True),
    ],
)
def test_sign_in_values(tmp_path: Path, selection: dict[str, Any], fires: bool) -> None:
    rule = _rule(tmp_path, {"selection": selection})
    assert _fires(rule, _event(_record(SUCCESS), result="SUCCESS")) is fires


def test_keywords_search_the_whole_record(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "title": "Keywords",
        "logsource": {"product": "azure", "service": "signinlogs"},
        "detection": {"keywords": ["*Mobile app*notification*", "nothing-like-this"]},
    }
    doc["detection"]["condition"] = "keywords"
    (tmp_path / "k.yml").write_text(yaml.safe_dump(doc), "utf-8")
    (load,) = load_sigma_rules(tmp_path)
    assert isinstance(load.rule, SigmaDetection), load.reason
    assert load.rule_id == "sigma.k"
    assert _fires(load.rule, _event(_record(SUCCESS)))
    assert not _fires(load.rule, _event(_record("SignInLogs/disabled-account-us-time.json")))


def test_keys_in_any_case_and_code_under_status(tmp_path: Path) -> None:
    rule = _rule(tmp_path, {"selection": {"ResultType": 50053, "UserAgent|contains": "Chrome"}})
    assert _fires(rule, _event(_record("SignInLogs/lowercase-keys-ipv6-port-locked.json")))
    record = _record("SignInLogs/lowercase-keys-ipv6-port-locked.json")
    del record["resulttype"]  # the code is still in properties.status.errorCode
    assert _fires(rule, _event(record))
    record["properties"]["status"]["errorCode"] = 50126
    assert not _fires(rule, _event(record))


def test_properties_held_as_a_json_string(tmp_path: Path) -> None:
    rule = _rule(tmp_path, {"selection": {"DeviceDetail.browser|startswith": "Edge "}})
    path = "SignInLogs/bad-password-properties-as-string-ip-port.json"
    assert isinstance(_record(path)["properties"], str)
    assert _fires(rule, _event(_record(path)))


def test_caller_address_with_a_port(tmp_path: Path) -> None:
    v4 = _rule(tmp_path, {"selection": {"callerIpAddress|cidr": "203.0.113.0/24"}})
    assert _fires(v4, _event(_record("SignInLogs/bad-password-properties-as-string-ip-port.json")))
    v6 = _rule(tmp_path, {"selection": {"callerIpAddress|cidr": "2a01:111::/32"}})
    assert _fires(v6, _event(_record("SignInLogs/lowercase-keys-ipv6-port-locked.json")))


def test_status_is_derived_from_the_normalized_result_or_searched(tmp_path: Path) -> None:
    success = _rule(tmp_path, {"selection": {"Status": "Success"}})
    record = _record(SUCCESS)
    assert _fires(success, _event(record, result="SUCCESS"))
    assert not _fires(success, _event(record, result="FAILED_BAD_PASSWORD"))
    assert not _fires(success, _event(record))
    denied = _rule(tmp_path, {"selection": {"Status|contains": "MFA Denied"}})
    record["properties"]["status"]["additionalDetails"] = "MFA denied; user declined"
    assert _fires(denied, _event(record, result="FAILED_MFA"))


def test_audit_lists_and_message_alias(tmp_path: Path) -> None:
    record = _record("AuditLogs/global-admin-role-granted.json")
    audit = {"log_set": LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, "category": "AuditLogs"}
    new_value = "TargetResources.ModifiedProperties.NewValue|contains"
    role = _rule(tmp_path, {"selection": {new_value: "Global Administrator"}}, "auditlogs")
    assert _fires(role, _event(record, **audit))
    message = _rule(tmp_path, {"selection": {"properties.message": "Add member to role"}}, "pim")
    assert not _fires(message, _event(record, **audit)), "logged by Core Directory, not PIM"
    record["properties"]["loggedByService"] = "PIM"
    assert _fires(message, _event(record, **audit))


def test_rule_reads_only_its_service_categories(tmp_path: Path) -> None:
    rule = _rule(tmp_path, {"selection": {"operationName": "Add member to role"}}, "auditlogs")
    record = _record("AuditLogs/global-admin-role-granted.json")
    assert _fires(rule, _event(record, category="AuditLogs"))
    assert not _fires(rule, _event(record, category="SignInLogs"))


def test_resource_provider_is_derived_from_the_operation(tmp_path: Path) -> None:
    selection = {
        "ResourceProviderValue": "Microsoft.Authorization",
        "CategoryValue": "Administrative",
    }
    rule = _rule(tmp_path, {"selection": selection}, "activitylogs")
    record = _record("Administrative/owner-role-assignment-request-body.json")
    activity = {"log_set": LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, "category": "Administrative"}
    assert _fires(rule, _event(record, **activity))
    record["operationName"] = "Microsoft.Compute/virtualMachines/write"
    assert not _fires(rule, _event(record, **activity))
    caller = _rule(tmp_path, {"selection": {"Caller": "carol.admin@contoso.com"}}, "activitylogs")
    assert _fires(caller, _event(record, **activity, user="carol.admin@contoso.com"))
    assert not _fires(caller, _event(record, **activity, user="bob@contoso.com"))


def test_a_record_that_is_not_an_object_never_fires(tmp_path: Path) -> None:
    rule = _rule(tmp_path, {"selection": {"ResultType|exists": False}})
    assert _fires(rule, _event(b"{}"))
    assert not _fires(rule, _event(b"[1, 2]"))
    assert not _fires(rule, _event(b"not json"))


# End to end: `hubsight rules import sigma` then `hubsight detect --replay`.


def _activity(operation: str, resource: str) -> dict[str, Any]:
    record = _record("Administrative/owner-role-assignment-request-body.json")
    record["operationName"] = operation
    record["resourceId"] = resource
    del record["identity"]["authorization"]  # it names roleAssignments/write too
    return record


def _cases() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records that fire the rules named in HITS, and near misses that fire no Sigma rule."""
    single = _record(SUCCESS)
    single["properties"]["authenticationRequirement"] = "singleFactorAuthentication"
    readers = json.loads(
        (AZURE / "AuditLogs/global-admin-role-granted.json")
        .read_text("utf-8")
        .replace("Global Administrator", "Directory Readers")
        .replace("CompanyAdministrator", "DirectoryReaders")
        .replace("62e90394-69f5-4237-9190-012177145e10", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b")
    )
    failed = _record("AuditLogs/add-user-failed-lowercase-level.json")
    added = _record("AuditLogs/add-user-failed-lowercase-level.json")
    added["properties"]["result"] = "success"
    hybrid = "/subscriptions/3f2a/providers/Microsoft.ADHybridHealthService/services/"
    unfamiliar = _record("UserRiskEvents/unfamiliar-sign-in-properties.json")
    confirmed = _record("UserRiskEvents/unfamiliar-sign-in-properties.json")
    confirmed["properties"]["riskEventType"] = "adminConfirmedUserCompromised"
    confirmed["properties"]["riskType"] = "adminConfirmedUserCompromised"
    vault = "/subscriptions/3f2a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-prod"
    hits = [
        _record("SignInLogs/lowercase-keys-ipv6-port-locked.json"),
        single,
        _record("AuditLogs/global-admin-role-granted.json"),
        added,
        _activity(
            "Microsoft.ADHybridHealthService/services/delete", hybrid + "AdFederationService-x"
        ),
        _record("Administrative/owner-role-assignment-request-body.json"),
        _activity("Microsoft.KeyVault/vaults/delete", vault),
        unfamiliar,
    ]
    misses = [
        _record("SignInLogs/bad-password-properties-as-string-ip-port.json"),
        _record(SUCCESS),
        readers,
        failed,
        _activity("Microsoft.ADHybridHealthService/services/delete", hybrid + "AdDomainService-x"),
        _activity("Microsoft.KeyVault/vaults/read", vault),
        confirmed,
    ]
    return hits, misses


HITS = {
    "smart_lockout.yml",
    "single_factor_unregistered_device.yml",
    "privileged_role_granted.yml",
    "administrator_role_by_name.yml",
    "user_created.yml",
    "hybrid_health_adfs_removed.yml",
    "owner_granted_on_subscription.yml",
    "key_vault_removed.yml",
    "unfamiliar_properties_at_risk.yml",
}


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.output


def _fired(data: Path, records: list[dict[str, Any]], tmp_path: Path, name: str) -> set[str]:
    path = tmp_path / name
    path.write_bytes(msgspec.json.encode({"records": records}))
    rules = str(data / "rules" / "sigma")
    output = _invoke(
        ["--data-dir", str(data), "detect", "--replay", "--input", str(path), "--rules", rules]
    )
    alerts = [json.loads(line) for line in output.splitlines()]
    return {a["rule_id"] for a in alerts if a["rule_id"].startswith("sigma.")}


def test_import_then_replay_fires_shapes_rules(
    tmp_path: Path, shapes: dict[str, SigmaLoad]
) -> None:
    data = tmp_path / "data"
    output = _invoke(["--data-dir", str(data), "rules", "import", "sigma", str(SHAPES), "--json"])
    lines = [json.loads(line) for line in output.splitlines()]
    assert all(set(line) == {"path", "document", "loaded", "reason", "rule_id"} for line in lines)
    report = {Path(line["path"]).name: (line["loaded"], line["reason"]) for line in lines}
    assert report == {n: (r == LOADED, r) for n, r in SHAPES_EXPECTED.items()}
    kept = sorted(p.name for p in (data / "rules" / "sigma").iterdir())
    assert kept == sorted(n for n, r in SHAPES_EXPECTED.items() if r == LOADED)

    hits, misses = _cases()
    assert _fired(data, hits, tmp_path, "hits.json") == {shapes[n].rule_id for n in HITS}
    assert _fired(data, misses, tmp_path, "misses.json") == set()


def test_import_prints_a_line_per_file_for_people(tmp_path: Path) -> None:
    output = _invoke(["--data-dir", str(tmp_path / "d"), "rules", "import", "sigma", str(OWN)])
    lines = sorted(line.split("\t") for line in output.splitlines())
    assert len(lines) == len(OWN_EXPECTED) + 1
    assert [state for state, *_ in lines].count("loaded") == 6
    assert ["skipped", str(OWN / "empty.yml"), "-", OWN_EXPECTED["empty.yml"]] in lines
    assert [
        "loaded",
        str(OWN / "two_rules.yml"),
        "sigma.8b5c7a6f-4e3d-4c2b-9a0f-0e9d8c7b6a5f",
        LOADED,
    ] in lines


def test_graph_and_rest_shapes_read_like_event_hub_records(tmp_path: Path) -> None:
    audit = _rule(
        tmp_path, {"selection": {"Category": "Policy", "OperationName": "Update*"}}, "auditlogs"
    )
    graph = _record("AuditLogs/graph-shape-policy-category.json")
    admin = {"log_set": LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, "category": "AuditLogs"}
    assert _fires(audit, _event(graph, **admin))
    graph["activityDisplayName"] = "Add conditional access policy"
    assert not _fires(audit, _event(graph, **admin))
    selection = {
        "CategoryValue": "Administrative",
        "OperationNameValue": "Microsoft.Network/networkSecurityGroups/write",
    }
    activity = _rule(tmp_path, {"selection": selection}, "activitylogs")
    rest = _record("Administrative/microsoft-docs-rest-shape.json")
    assert isinstance(rest["operationName"], dict)
    assert _fires(activity, _event(rest, **{**admin, "category": "Administrative"}))


# Keys the shapes rules read, in several spellings, so that random records reach deep paths.
_KEYS = st.sampled_from(
    [
        "properties",
        "Properties",
        "resultType",
        "ResultType",
        "operationName",
        "category",
        "targetResources",
        "modifiedProperties",
        "newValue",
        "status",
        "deviceDetail",
        "trustType",
        "userAgent",
        "callerIpAddress",
        "riskEventType",
        "x",
    ]
)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)
_CATEGORIES = st.sampled_from(["SignInLogs", "AuditLogs", "Administrative", "UserRiskEvents"])


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(record=st.dictionaries(_KEYS, _JSON, max_size=6), category=_CATEGORIES)
def test_any_record_is_evaluated_without_error(
    shapes: dict[str, SigmaLoad], record: dict[str, Any], category: str
) -> None:
    event = _event(msgspec.json.encode(record), category=category, result="SUCCESS")
    for load in shapes.values():
        if load.rule is not None:
            assert len(list(load.rule.evaluate(event, NoContext()))) <= 1


def _kind(operation: str, log_set: LogSet = LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY) -> EventKind:
    return EventKind(log_set=log_set, result="SUCCESS", operation=operation, has_user=True)


def test_activity_rules_naming_operations_read_only_those(tmp_path: Path) -> None:
    named = {
        "operationName": ["MICROSOFT.KEYVAULT/VAULTS/DELETE", "Microsoft.KeyVault/vaults/write"]
    }
    rule = _rule(tmp_path, {"selection": named}, service="activitylogs")
    assert rule.reads(_kind("Microsoft.KeyVault/vaults/delete"))
    assert rule.reads(_kind("MICROSOFT.KEYVAULT/VAULTS/WRITE", LogSet.CLOUD_SERVICE_ACTIVITY))
    assert not rule.reads(_kind("Microsoft.KeyVault/vaults/read"))
    # Defender's records in the activity log are "Security alert" events: always handed over.
    assert rule.reads(_kind("Security alert", LogSet.THIRD_PARTY_ALERTS))


@pytest.mark.parametrize(
    "detection",
    [
        {"selection": {"operationName|startswith": "MICROSOFT.KEYVAULT/"}},
        {"selection": {"properties.statusCode": "Deleted"}},
    ],
    ids=["wildcard", "other-field"],
)
def test_activity_rules_not_naming_operations_read_every_operation(
    tmp_path: Path, detection: dict[str, Any]
) -> None:
    rule = _rule(tmp_path, detection, service="activitylogs")
    assert rule.reads(_kind("Microsoft.Compute/virtualMachines/write"))


def test_shapes_activity_rules_read_their_operations(shapes: dict[str, SigmaLoad]) -> None:
    rules = {
        load.path.name: load.rule
        for load in shapes.values()
        if load.rule is not None and load.path.parent.name == "activity"
    }
    keyvault = rules["key_vault_removed.yml"]
    assert keyvault.reads(_kind("MICROSOFT.KEYVAULT/VAULTS/DELETE"))
    assert not keyvault.reads(_kind("Microsoft.KeyVault/vaults/read"))
    unrelated = _kind("Microsoft.Example/widgets/read")
    # Most activity rules name their operations; the others read every one.
    assert sum(not rule.reads(unrelated) for rule in rules.values()) >= len(rules) // 2


def test_rules_of_separate_loads_decode_a_record_once(tmp_path: Path) -> None:
    # Shipped families and imported rules load separately; a sign-in is decoded once for all.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _rule(tmp_path / "a", {"selection": {"ResultType": 0}})
    second = _rule(tmp_path / "b", {"selection": {"AppDisplayName|contains": "Office"}})
    event = _event(_record(SUCCESS), result="SUCCESS")
    record = first.match(event)
    assert record is not None
    assert second.match(event) is record
