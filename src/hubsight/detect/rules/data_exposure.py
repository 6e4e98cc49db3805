"""Data services opened to the network: database firewall rules, storage and key vault firewalls.

They were Sigma rules matching one spelling each (a database rule of exactly 0.0.0.0 to
255.255.255.255; ``defaultAction: Allow``), so 1.0.0.0-255.255.255.255, two halves of the
address space, "Allow Azure services" (0.0.0.0-0.0.0.0), an IP rule of 0.0.0.0/1 or a /16 went
by. Now Python under the same ids: what each write lets in is read as the ``SecurityRule`` it
amounts to (``service_access``) and its addresses graded as the NSG rules grade theirs (the
Internet, a wide public range; named addresses and private ranges stay quiet here, as letting a
known client in is what these firewalls are for). Their examples are Event Hub records in
``examples/<rule id>.examples.json`` (the full id: two of them end in ``network_opened``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from hubsight.detect.base import Example, Minutes, RuleConfig, RuleMeta, Severity
from hubsight.detect.content.examples import load_examples
from hubsight.detect.rules.exposure import Reach, SecurityRule
from hubsight.detect.rules.network import EXAMPLES_DIR, ExposureRule
from hubsight.detect.rules.service_access import (
    AZURE_SERVICES,
    DATABASE_FIREWALL_WRITES,
    DEFAULT_ACTION,
    PUBLIC_ACCESS,
    STORAGE_WRITE,
    VAULT_WRITE,
    database_firewall_rule,
    database_of,
    network_acl_rules,
)
from hubsight.detect.rules.signals import ADMIN_LOG_SETS
from hubsight.parsing.event import Event

_REFERENCES = "learn.microsoft.com/azure/azure-sql/database/network-access-controls-overview"


class ServiceExposureConfig(RuleConfig):
    """A day's dedup window per exposure."""

    # The same opening written again within a day (a pipeline re-applying its template) joins
    # its alert.
    dedup_minutes: Minutes = 1440


class ServiceExposureRule(ExposureRule[ServiceExposureConfig]):
    """An exposure rule over a data service's firewall: one alert per opening of a resource."""

    config_type = ServiceExposureConfig

    def owner(self, event: Event) -> str:
        """The resource whose firewall the write sets."""
        return event.resource_id or "unknown"

    def shown(self, rule: SecurityRule) -> dict[str, object]:
        """The setting or firewall rule and the addresses it lets in (no ports or protocol:
        the service has its own)."""
        return {"name": rule.name, "sources": list(rule.sources)}

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """The records of ``examples/<rule id>.examples.json``, parsed."""
        return load_examples(EXAMPLES_DIR / f"{cls.meta.id}.examples.json")


class DatabaseFirewallOpened(ServiceExposureRule):
    """A database firewall rule lets every address in (high), or every Azure resource or a wide
    public range (medium)."""

    meta = RuleMeta(
        id="sql.firewall_all_addresses",
        title="Database firewall opened to every address",
        description="A server-level firewall rule of an Azure SQL server, a PostgreSQL or "
        "MySQL flexible server or a Synapse workspace lets a range of addresses try to sign "
        "in. High when the range holds the Internet (0.0.0.0-255.255.255.255, "
        "1.0.0.0-255.255.255.255, 0.0.0.0-127.255.255.255: any range spanning a public /8 "
        "or wider). Medium for 0.0.0.0-0.0.0.0, which is how Azure writes 'Allow Azure "
        "services and resources to access this server' (AllowAllWindowsAzureIps): it lets in "
        "every resource in Azure, other customers' too (" + _REFERENCES + "), and for a "
        "wide public range (a /9 to a /16: an ISP's or a cloud's block). Quiet for narrower "
        "ranges (a client's addresses), private ranges and a start after the end. Fires on "
        "the Start record (its request body) or the Success record (its response body); a "
        "failed write is quiet. One alert per rule and range: written again within "
        "`dedup_minutes` (a day) it joins that alert.",
        severity=Severity.HIGH,
        technique="T1562.007",
        log_sets=ADMIN_LOG_SETS,
        runbook="Ask the caller why; delete the rule or narrow it to the client addresses "
        "that need the database, and prefer private endpoints with public network access "
        "disabled. For 'Allow Azure services', name the services' own addresses or use "
        "private endpoints instead. If it was open, review the server's sign-ins (auditing) "
        "since.",
        family="sql",
        tactics=("defense-evasion",),
    )
    operations = frozenset(DATABASE_FIREWALL_WRITES)

    def rules_of(self, event: Event) -> Sequence[SecurityRule]:
        """The range the firewall-rule write lets in."""
        rule = database_firewall_rule(event)
        return (rule,) if rule is not None else ()

    def owner(self, event: Event) -> str:
        """The server or workspace (its rules share one firewall)."""
        return database_of(event.resource_id)

    def place(self, event: Event) -> str:
        """``SQL server sql-prod``."""
        kind = DATABASE_FIREWALL_WRITES.get((event.operation or "").strip().upper(), "server")
        return f"{kind} {database_of(event.resource_id).rsplit('/', 1)[-1]}"

    def judge(self, rule: SecurityRule) -> tuple[Severity, str] | None:
        """Every address, every Azure resource or a wide range; else nothing."""
        (source,) = rule.sources
        if source == AZURE_SERVICES:
            return (
                Severity.MEDIUM,
                f"firewall open to every Azure resource, other customers' too ({source}: "
                "Allow Azure services)",
            )
        reach = rule.reach
        if reach is Reach.INTERNET:
            return Severity.HIGH, f"firewall open to every address ({source})"
        if reach is Reach.WIDE:
            return Severity.MEDIUM, f"firewall open to a wide public range ({source})"
        return None


class NetworkAclsOpened(ServiceExposureRule):
    """A storage account's or key vault's firewall lets every address in (medium) or a wide
    public range, or public access is switched on without saying from where (low)."""

    # What the resource is called in titles.
    noun: ClassVar[str] = "resource"

    def rules_of(self, event: Event) -> Sequence[SecurityRule]:
        """What the write's network settings let in."""
        return network_acl_rules(event)

    def place(self, event: Event) -> str:
        """``storage account stprod``."""
        name = (event.resource_id or "").rstrip("/").rsplit("/", 1)[-1]
        return f"{self.noun} {name or event.target_resource or 'unknown'}"

    def title(self, phrase: str, place: str, rule: SecurityRule, actor: str) -> str:
        """``firewall open to all networks (...) on key vault kv-prod by alice``."""
        return f"{phrase} on {place} by {actor}"

    def judge(self, rule: SecurityRule) -> tuple[Severity, str] | None:
        """All networks or every address (medium), a wide range or public access with the
        rules unsaid (low); else nothing."""
        if rule.name == PUBLIC_ACCESS:
            return (
                Severity.LOW,
                "public network access enabled (the network rules set before, not in this "
                "write, decide from where)",
            )
        if rule.name == DEFAULT_ACTION:
            return Severity.MEDIUM, "firewall open to all networks (default action Allow)"
        sources = ", ".join(rule.sources)
        reach = rule.reach
        if reach is Reach.INTERNET:
            return Severity.MEDIUM, f"firewall open to every address (IP rule {sources})"
        if reach is Reach.WIDE:
            return Severity.LOW, f"firewall open to a wide public range (IP rule {sources})"
        return None


_ACLS = (
    "Medium when its network rules' default action is Allow (all networks) or an IP rule "
    "holds the Internet (0.0.0.0/0, 0.0.0.0/1 and 128.0.0.0/1, any public prefix of /8 or "
    "wider); low for an IP rule of a wide public range (a /9 to a /16, IPv6 to /40: an ISP's "
    "or a cloud's block), and when a request (the Start record) sets publicNetworkAccess to "
    "Enabled and carries no default action (the rules set before decide who gets in: check "
    "them; a response showing it is only the resource's state). Quiet "
    "for named addresses, private ranges, default action Deny, and whenever the same write "
    "sets publicNetworkAccess Disabled, which closes the public endpoint whatever the rules "
    "say. Reads the write's body: the Success record's response body (the resource as "
    "written), else the Start record's request body; a failed write is quiet. One alert per "
    "opening (the setting and its addresses): written again within `dedup_minutes` (a day) "
    "it joins that alert."
)
_CLOSE = (
    "Ask the caller why; set the default action back to Deny, remove the wide IP rule, or "
    "disable public network access where private endpoints serve. "
)


class StorageNetworkOpened(NetworkAclsOpened):
    """A storage account's firewall opened to all networks or a wide range."""

    meta = RuleMeta(
        id="storage.network_opened",
        title="Storage account opened to all networks",
        description="A storage account's firewall (properties.networkAcls: defaultAction, "
        "ipRules and ipv6Rules) lets everyone reach its data endpoints, so keys and SAS "
        "tokens work from anywhere. " + _ACLS,
        severity=Severity.MEDIUM,
        technique="T1562.007",
        log_sets=ADMIN_LOG_SETS,
        runbook=_CLOSE + "If it was open, look at the account's storage logs for requests "
        "from unknown addresses since. A migration opening it for a while is the usual reason.",
        family="storage",
        tactics=("defense-evasion",),
    )
    operations = frozenset({STORAGE_WRITE})
    noun = "storage account"


class KeyVaultNetworkOpened(NetworkAclsOpened):
    """A key vault's firewall opened to all networks or a wide range."""

    meta = RuleMeta(
        id="keyvault.network_opened",
        title="Key vault firewall opened to all networks",
        description="A key vault's firewall (properties.networkAcls: defaultAction and "
        "ipRules) lets everyone reach the vault, so stolen credentials read its secrets from "
        "anywhere, not only from the allowed networks. " + _ACLS,
        severity=Severity.MEDIUM,
        technique="T1562.007",
        log_sets=ADMIN_LOG_SETS,
        runbook=_CLOSE + "If it was open, look at the vault's audit events for reads from "
        "unknown addresses since. Troubleshooting from a new network should be short-lived.",
        family="keyvault",
        tactics=("defense-evasion",),
    )
    operations = frozenset({VAULT_WRITE})
    noun = "key vault"


RULES = (DatabaseFirewallOpened, StorageNetworkOpened, KeyVaultNetworkOpened)
