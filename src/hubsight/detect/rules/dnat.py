"""What an Azure Firewall's DNAT rules publish: the firewall's public ports, forwarded inside.

A DNAT rule forwards traffic from its sources to the firewall's public address and port
(``destinationPorts``) on to a machine inside (``translatedAddress``:``translatedPort``), and
lets it through: it is the firewall's way of exposing a service to the Internet. Two writes
carry such rules: a firewall policy's rule collection group
(``firewallPolicies/ruleCollectionGroups/write``, ``properties.ruleCollections[]`` whose
``ruleCollectionType`` is ``FirewallPolicyNatRuleCollection``) and a classic firewall with rules
of its own (``azureFirewalls/write``, ``properties.natRuleCollections[]``). Each rule becomes a
``SecurityRule`` letting in what it forwards: the translated port when it names one, as that is
the service reached. Network and application rules filter traffic already inside or leaving;
they are not read.
"""

from __future__ import annotations

from collections.abc import Sequence

from hubsight.detect.rules.exposure import SecurityRule, bodies, named, port_span
from hubsight.parsing.azure.activity import lookup
from hubsight.parsing.event import Event

POLICY_GROUP_WRITE = "MICROSOFT.NETWORK/FIREWALLPOLICIES/RULECOLLECTIONGROUPS/WRITE"
FIREWALL_WRITE = "MICROSOFT.NETWORK/AZUREFIREWALLS/WRITE"
_NAT_COLLECTION = "firewallpolicynatrulecollection"


def _strings(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if v not in (None, "")]
    return [str(value).strip()] if value not in (None, "") else []


def nat_rule(element: object) -> SecurityRule | None:
    """The DNAT rule an element of a NAT rule collection describes, or None."""
    if not isinstance(element, dict):
        return None
    translated = lookup(element, "translatedPort")
    forwarded = port_span(translated)
    public = [port_span(p) for p in _strings(lookup(element, "destinationPorts"))]
    ports = (forwarded,) if forwarded else tuple(p for p in public if p is not None)
    protocols = _strings(lookup(element, "ipProtocols", "protocols"))
    target = lookup(element, "translatedAddress", "translatedFqdn")
    name = lookup(element, "name")
    public_text = ",".join(_strings(lookup(element, "destinationPorts"))) or "?"
    # IP groups are named address lists: their resource id's last step names them.
    groups = [
        f"IP group {g.rstrip('/').rsplit('/', 1)[-1]}"
        for g in _strings(lookup(element, "sourceIpGroups"))
    ]
    return SecurityRule(
        name=name if isinstance(name, str) and name else None,
        access="allow",
        direction="inbound",
        protocol=",".join(p.lower() for p in protocols) or "*",
        sources=(*_strings(lookup(element, "sourceAddresses")), *groups),
        ports=ports,
        translated=f"{public_text} -> {target}:{translated}" if target and translated else None,
    )


def _collection_rules(collection: object, policy: bool) -> list[SecurityRule]:
    if not isinstance(collection, dict):
        return []
    if policy:
        kind = lookup(collection, "ruleCollectionType")
        if not isinstance(kind, str) or kind.lower() != _NAT_COLLECTION:
            return []
        inner = collection
    else:
        nested = lookup(collection, "properties")
        inner = nested if isinstance(nested, dict) else collection
        action = lookup(inner, "action")
        kind = lookup(action, "type") if isinstance(action, dict) else None
        # Classic NAT collections are Dnat (or Snat, which publishes nothing).
        if isinstance(kind, str) and kind.lower() != "dnat":
            return []
    rules = lookup(inner, "rules")
    found = (nat_rule(r) for r in rules) if isinstance(rules, list) else ()
    return [r for r in found if r is not None]


def dnat_rules(event: Event) -> Sequence[SecurityRule]:
    """The DNAT rules a rule collection group's or a classic firewall's write carries: the
    written ones (response body) when it has them, else the asked-for ones (request body)."""
    operation = (event.operation or "").strip().upper()
    if operation not in (POLICY_GROUP_WRITE, FIREWALL_WRITE):
        return ()
    policy = operation == POLICY_GROUP_WRITE
    key = "ruleCollections" if policy else "natRuleCollections"
    for body in bodies(event):
        properties = lookup(body, "properties")
        collections = lookup(properties, key) if isinstance(properties, dict) else None
        if isinstance(collections, list):
            return tuple(r for c in collections for r in _collection_rules(c, policy))
    return ()


def firewall_of(event: Event) -> str:
    """The firewall policy (and rule collection group) or firewall a write acted on."""
    policy = named(event.resource_id, "firewallPolicies")
    if policy is None:
        return f"firewall {event.target_resource or 'unknown'}"
    group = named(event.resource_id, "ruleCollectionGroups")
    of_group = f"rule collection group {group} of " if group else ""
    return f"{of_group}firewall policy {policy}"
