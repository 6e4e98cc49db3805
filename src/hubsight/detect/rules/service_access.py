"""Whom a data service's own firewall lets in, as an Activity Log write records it.

Databases keep their firewall rules as resources of their own, each one address range
(``firewallRules/write`` of an Azure SQL logical server, a PostgreSQL or MySQL flexible server, a
Synapse workspace: ``properties.startIpAddress`` to ``properties.endIpAddress``). Azure writes
"Allow Azure services and resources to access this server" as the range 0.0.0.0-0.0.0.0, which
lets in every resource inside Azure, other customers' too (Microsoft's network access controls
page for Azure SQL says so). Storage accounts and key vaults carry their firewall in the
account's or vault's own write: ``properties.networkAcls`` (``defaultAction``, and the CIDRs of
``ipRules[].value``; a storage account also ``ipv6Rules``) beside
``properties.publicNetworkAccess``, which closes the public endpoint whatever the rules say when
``Disabled`` (a storage account's ``SecuredByPerimeter`` hands it to a network security
perimeter). Each is read as the ``SecurityRule`` it amounts to, an inbound allow from its
addresses, so the network exposure rules grade its sources as they grade an NSG rule's. What
was written (the Success record's response body) is read before what was asked for (the Start
record's request body).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hubsight.detect.rules.exposure import SecurityRule, bodies, labelled_bodies
from hubsight.parsing.azure.activity import lookup
from hubsight.parsing.event import Event

# A database's firewall-rule write, and what the resource it sits on is called.
DATABASE_FIREWALL_WRITES = {
    operation.upper(): kind
    for operation, kind in (
        ("Microsoft.Sql/servers/firewallRules/write", "SQL server"),
        ("Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/write", "PostgreSQL server"),
        ("Microsoft.DBforMySQL/flexibleServers/firewallRules/write", "MySQL server"),
        ("Microsoft.Synapse/workspaces/firewallRules/write", "Synapse workspace"),
    )
}
STORAGE_WRITE = "MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE"
VAULT_WRITE = "MICROSOFT.KEYVAULT/VAULTS/WRITE"
# "Allow Azure services and resources to access this server", as a database firewall rule.
AZURE_SERVICES = "0.0.0.0-0.0.0.0"
# What a storage account's or key vault's firewall settings are read as (the rule's name).
DEFAULT_ACTION = "networkAcls.defaultAction"
IP_RULE = "networkAcls.ipRules"
PUBLIC_ACCESS = "publicNetworkAccess"
# Public network access values that leave the firewall's rules out of it.
_CLOSED = frozenset({"disabled", "securedbyperimeter"})


def allowing(name: str, sources: Iterable[str]) -> SecurityRule:
    """An inbound allow from ``sources`` (a service's firewall has no ports of its own)."""
    return SecurityRule(
        name=name,
        access="allow",
        direction="inbound",
        protocol="tcp",
        sources=tuple(sources),
        ports=(),
    )


def _lower(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def _properties(body: dict[str, object]) -> dict[str, object]:
    nested = lookup(body, "properties")
    return nested if isinstance(nested, dict) else body


def database_firewall_rule(event: Event) -> SecurityRule | None:
    """The address range a database firewall-rule write lets in (``start-end``), or None when
    it is not such a write or names no range."""
    if (event.operation or "").strip().upper() not in DATABASE_FIREWALL_WRITES:
        return None
    own = (event.resource_id or "").rstrip("/").rsplit("/", 1)[-1] or "unnamed"
    for body in bodies(event):
        properties = _properties(body)
        start = lookup(properties, "startIpAddress")
        end = lookup(properties, "endIpAddress")
        if isinstance(start, str) and isinstance(end, str) and start.strip() and end.strip():
            name = lookup(body, "name")
            return allowing(
                name if isinstance(name, str) and name else own, [f"{start.strip()}-{end.strip()}"]
            )
    return None


def database_of(resource_id: str | None) -> str:
    """The server or workspace a firewall rule's resource id lies in (the id itself when it
    names no firewall rule)."""
    parts = (resource_id or "").rstrip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "firewallrules" not in lowered:
        return resource_id or "unknown"
    return "/".join(parts[: lowered.index("firewallrules")])


def network_acl_rules(event: Event) -> Sequence[SecurityRule]:
    """What a storage account's or key vault's write lets in through its public endpoint: all
    networks (default action Allow), each allowed IP rule, or public access switched on with no
    default action in the request to say from where (a response showing it is the resource's
    state: a vault whose firewall was never set shows it on every write). Nothing when public
    access is disabled."""
    for asked, body in labelled_bodies(event):
        properties = lookup(body, "properties")
        if not isinstance(properties, dict):
            continue
        public = lookup(properties, "publicNetworkAccess")
        acls = lookup(properties, "networkAcls")
        if public is not None or isinstance(acls, dict):
            return _acl_rules(_lower(public), acls if isinstance(acls, dict) else {}, asked)
    return ()


def _acl_rules(public: str, acls: dict[str, object], asked: bool) -> Sequence[SecurityRule]:
    if public in _CLOSED:
        return ()
    default = _lower(lookup(acls, "defaultAction"))
    if default == "allow":
        # The IP rules then let in no more than every address already.
        return (allowing(DEFAULT_ACTION, ["*"]),)
    switched_on = asked and public == "enabled" and not default
    rules = [allowing(PUBLIC_ACCESS, [])] if switched_on else []
    for key in ("ipRules", "ipv6Rules"):
        listed = lookup(acls, key)
        for item in listed if isinstance(listed, list) else ():
            value = lookup(item, "value") if isinstance(item, dict) else item
            action = _lower(lookup(item, "action")) if isinstance(item, dict) else ""
            if isinstance(value, str) and value.strip() and action in ("", "allow"):
                rules.append(allowing(IP_RULE, [value.strip()]))
    return tuple(rules)
