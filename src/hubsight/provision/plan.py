"""What `hubsight azure setup` asks Azure for: names, IDs and log categories, before any rendering.

Both renderers (``azcli`` and ``bicep``) draw on one ``SetupPlan`` so the two formats cannot drift
apart. Nothing here talks to Azure: the plan only names what the printed script will create.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hubsight.errors import ConfigError
from hubsight.parsing.azure import build_registry

DEFAULT_HUB = "insights-operational-logs"
NAMESPACE_SUFFIX = ".servicebus.windows.net"
# The names of what the script creates besides the user's own: fixed so that a second run
# finds and updates them instead of adding copies.
SETTING_NAME = "hubsight"
LISTEN_POLICY = "hubsight-listen"
DEFENDER_POLICY = "hubsight-defender-send"
DEFENDER_AUTOMATION = "hubsight-defender-export"
# Every namespace has this policy (Manage, Send, Listen); a diagnostic setting needs all three.
ROOT_POLICY = "RootManageSharedAccessKey"

# The Activity Log's diagnostic-setting categories, as Azure Monitor documents them.
ACTIVITY_LOG_CATEGORIES = (
    "Administrative",
    "Security",
    "ServiceHealth",
    "Alert",
    "Recommendation",
    "Policy",
    "Autoscale",
    "ResourceHealth",
)
# Entra ID's diagnostic-setting categories (microsoft.aadiam), as Microsoft documents them. The
# script streams those of them that hubsight has a parser for (see ``entra_categories``).
ENTRA_DIAGNOSTIC_CATEGORIES = (
    "AuditLogs",
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    "ServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs",
    "ProvisioningLogs",
    "ADFSSignInLogs",
    "RiskyUsers",
    "UserRiskEvents",
    "RiskyServicePrincipals",
    "ServicePrincipalRiskEvents",
    "MicrosoftServicePrincipalSignInLogs",
    "MicrosoftGraphActivityLogs",
    "EnrichedOffice365AuditLogs",
    "NetworkAccessTrafficLogs",
    "B2CRequestLogs",
)

# Azure's naming rules: https://learn.microsoft.com/azure/azure-resource-manager/management/
# resource-name-rules (Event Hubs namespace 6-50, hub 1-256, resource group 1-90).
_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$")
_HUB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")
_GROUP = re.compile(r"^[-\w._()]{0,89}[-\w_()]$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_LOCATION = re.compile(r"^[a-z0-9]{2,40}$")


def entra_categories() -> tuple[str, ...]:
    """The Entra ID categories hubsight parses: the ones worth streaming."""
    claimed = {c.lower() for c in build_registry().claimed}
    return tuple(c for c in ENTRA_DIAGNOSTIC_CATEGORIES if c.lower() in claimed)


@dataclass(frozen=True, kw_only=True, slots=True)
class SetupPlan:
    """The user's choices, checked, and every Azure name and ID derived from them."""

    subscription: str
    resource_group: str
    namespace: str
    location: str
    hub: str = DEFAULT_HUB
    entra: bool = False
    defender: bool = False

    def __post_init__(self) -> None:
        """Refuse names Azure would refuse, so the mistake shows here and not halfway through."""
        checks = (
            (
                _GUID,
                self.subscription,
                "--subscription",
                "a subscription ID, a GUID (az account list -o table)",
            ),
            (_GROUP, self.resource_group, "--resource-group", "1-90 letters, digits and ._-()"),
            (
                _NAMESPACE,
                self.namespace,
                "--namespace",
                "6-50 letters, digits and hyphens, a letter first",
            ),
            (
                _LOCATION,
                self.location,
                "--location",
                "a region name such as westeurope (az account list-locations -o table)",
            ),
            (_HUB, self.hub, "--hub", "1-256 letters, digits and ._-"),
        )
        for pattern, value, flag, wanted in checks:
            if not pattern.fullmatch(value):
                raise ConfigError(
                    f"{flag} {value!r} is not a name Azure accepts", hint=f"use {wanted}"
                )

    @property
    def server(self) -> str:
        """The namespace's host, which is also the Kafka bootstrap server."""
        return f"{self.namespace}{NAMESPACE_SUFFIX}"

    @property
    def namespace_id(self) -> str:
        """The namespace's resource ID."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.EventHub/namespaces/{self.namespace}"
        )

    @property
    def root_rule_id(self) -> str:
        """The namespace policy diagnostic settings send with (Manage, Send, Listen)."""
        return f"{self.namespace_id}/authorizationRules/{ROOT_POLICY}"

    @property
    def hub_id(self) -> str:
        """The event hub's resource ID."""
        return f"{self.namespace_id}/eventhubs/{self.hub}"

    @property
    def source_name(self) -> str:
        """The hubsight source the script ends by adding."""
        return f"azure-{self.namespace}"
