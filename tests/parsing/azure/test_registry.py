"""The registry: every Azure category is claimed by exactly one parser, shapes are recognised."""

from __future__ import annotations

from collections import Counter

import pytest

from hubsight.parsing.azure import (
    AzureRegistry,
    DuplicateCategoryError,
    build_registry,
)
from hubsight.parsing.azure.activity import ActivityParser
from hubsight.parsing.azure.audit import AuditParser
from hubsight.parsing.azure.defender import DefenderParser
from hubsight.parsing.azure.firewall import FirewallParser
from hubsight.parsing.azure.graph import GraphActivityParser
from hubsight.parsing.azure.keyvault import KeyVaultParser
from hubsight.parsing.azure.kubernetes import KubernetesAuditParser
from hubsight.parsing.azure.posture import DefenderPostureParser
from hubsight.parsing.azure.provisioning import ProvisioningParser
from hubsight.parsing.azure.resourcelog import ResourceLogParser
from hubsight.parsing.azure.risk import RiskParser
from hubsight.parsing.azure.signin import SignInParser
from hubsight.parsing.azure.sql import SqlAuditParser
from hubsight.parsing.azure.storage import StorageParser
from hubsight.parsing.geoip import GeoIP

# The issue's table of log sets: each category must have a parser.
ISSUE_CATEGORIES = {
    "SignInLogs": SignInParser,
    "ADFSSignInLogs": SignInParser,
    "NonInteractiveUserSignInLogs": SignInParser,
    "ServicePrincipalSignInLogs": SignInParser,
    "ManagedIdentitySignInLogs": SignInParser,
    "MicrosoftServicePrincipalSignInLogs": SignInParser,
    "AuditLogs": AuditParser,
    "Administrative": ActivityParser,
    "Policy": ActivityParser,
    "Action": ActivityParser,
    "Write": ActivityParser,
    "Delete": ActivityParser,
    "ServiceHealth": ActivityParser,
    "ResourceHealth": ActivityParser,
    "Alert": ActivityParser,
    "Autoscale": ActivityParser,
    "Recommendation": ActivityParser,
    "ProvisioningLogs": ProvisioningParser,
    "RiskyUsers": RiskParser,
    "Security": DefenderParser,
    "SecurityAlert": DefenderParser,
    "UserRiskEvents": RiskParser,
    "MicrosoftGraphActivityLogs": GraphActivityParser,
    "AuditEvent": KeyVaultParser,
    "StorageRead": StorageParser,
    "StorageWrite": StorageParser,
    "StorageDelete": StorageParser,
    "kube-audit": KubernetesAuditParser,
    "kube-audit-admin": KubernetesAuditParser,
    "AzureFirewallNetworkRule": FirewallParser,
    "AzureFirewallApplicationRule": FirewallParser,
    "AZFWNetworkRule": FirewallParser,
    "AZFWApplicationRule": FirewallParser,
    "AZFWNatRule": FirewallParser,
    "ApplicationGatewayFirewallLog": FirewallParser,
    "FrontDoorWebApplicationFirewallLog": FirewallParser,
    "SQLSecurityAuditEvents": SqlAuditParser,
}


@pytest.fixture(scope="module")
def registry() -> AzureRegistry:
    return build_registry()


def test_every_category_is_claimed_exactly_once(registry: AzureRegistry) -> None:
    counts = Counter(category.lower() for category in registry.claimed)
    assert [category for category, n in counts.items() if n != 1] == []
    assert set(counts) == set(registry.by_category)


@pytest.mark.parametrize(("category", "parser_type"), sorted(ISSUE_CATEGORIES.items()))
def test_issue_category_has_its_parser(
    registry: AzureRegistry, category: str, parser_type: type
) -> None:
    record = b'{"category": "%s"}' % category.encode()
    assert isinstance(registry.parser_for(category, record), parser_type)
    assert isinstance(registry.parser_for(category.lower(), record), parser_type)


@pytest.mark.parametrize("category", [None, "", "OperationalLogs", "NoSuchCategory"])
def test_unknown_categories_have_no_parser(registry: AzureRegistry, category: str | None) -> None:
    # A time alone is not the common resource-log schema: no operation, so nothing claims it.
    assert registry.parser_for(category, b'{"time": "2025-01-01T00:00:00Z"}') is None


@pytest.mark.parametrize(
    ("record", "claimed"),
    [
        (b'{"time": "t", "category": "OperationalLogs", "operationName": "Create"}', True),
        (b'{"resourceId": "/x", "category": "OperationalLogs", "operationName": "C"}', True),
        (b'{"TIME": "t", "Category": "OperationalLogs", "OperationName": "Create"}', True),
        (b'{"time": "t", "category": "OperationalLogs"}', False),
        (b'{"category": "OperationalLogs", "operationName": "Create"}', False),
    ],
)
def test_unclaimed_categories_of_the_resource_log_shape(
    registry: AzureRegistry, record: bytes, claimed: bool
) -> None:
    parser = registry.parser_for("OperationalLogs", record)
    assert isinstance(parser, ResourceLogParser) if claimed else parser is None


def test_shapes_without_a_log_category(registry: AzureRegistry) -> None:
    alert = b'{"SystemAlertId": "1", "AlertType": "X", "VendorName": "Microsoft"}'
    assert isinstance(registry.parser_for(None, alert), DefenderParser)
    graph = b'{"category": "Policy", "activityDisplayName": "Update policy", "initiatedBy": {}}'
    assert isinstance(registry.parser_for("Policy", graph), AuditParser)
    graph_user = b'{"category": "UserManagement", "activityDisplayName": "Add user"}'
    assert isinstance(registry.parser_for("UserManagement", graph_user), AuditParser)
    activity_policy = b'{"category": "Policy", "operationName": "x/audit/action"}'
    assert isinstance(registry.parser_for("Policy", activity_policy), ActivityParser)
    posture = b'{"Type": "Microsoft.Security/secureScores", "Id": "/subscriptions/s"}'
    assert isinstance(registry.parser_for(None, posture), DefenderPostureParser)
    exported_alert = b'{"type": "Microsoft.Security/Alerts", "SystemAlertId": "1"}'
    assert isinstance(registry.parser_for(None, exported_alert), DefenderParser)
    not_security = b'{"type": "Microsoft.Compute/virtualMachines", "id": "/subscriptions/s"}'
    assert registry.parser_for(None, not_security) is None
    graph_signin = b'{"createdDateTime": "2025-01-01T00:00:00Z", "clientAppUsed": "Browser"}'
    assert isinstance(registry.parser_for(None, graph_signin), SignInParser)
    # With an envelope it is a sign-in log record only when its category says so.
    wrapped = b'{"operationName": "Sign-in activity", "createdDateTime": "x", "clientAppUsed": "B"}'
    assert registry.parser_for(None, wrapped) is None


def test_a_second_claim_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Rival(ProvisioningParser):
        categories = ("signinlogs",)

    from hubsight.parsing import azure

    monkeypatch.setattr(azure, "_PARSER_TYPES", (*azure._PARSER_TYPES, Rival))
    with pytest.raises(DuplicateCategoryError, match="'signinlogs' is claimed by both"):
        build_registry(GeoIP())
