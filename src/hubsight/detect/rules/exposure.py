"""What a network security rule written through Azure Resource Manager lets in, rule by rule.

An NSG rule reaches the Activity Log in two shapes: its own write
(``networkSecurityGroups/securityRules/write``, the body is the rule) and the write of its whole
network security group (``networkSecurityGroups/write``, the body lists every rule in
``properties.securityRules``; ARM templates, Bicep, Terraform and the portal write NSGs so). The
Start record carries what was asked for (``properties.requestbody``), the Success record what was
written (``properties.responseBody``); either is JSON text. Each rule is judged as a whole (its
access, direction, protocol, ports and sources together), which a field-by-field match over a list
of rules cannot do, and its ports as ranges: ``3000-4000`` and ``*`` hold 3389.
``defaultSecurityRules`` (the platform's own, present in every NSG's response) are not read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgspec

from hubsight.parsing.azure.activity import decode_activity, lookup, properties_of
from hubsight.parsing.azure.normalize import json_value
from hubsight.parsing.event import Event

RULE_WRITE = "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE"
NSG_WRITE = "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/WRITE"
ALL_PORTS = (0, 65535)
# Where a record holds its bodies, what was written first.
_BODY_KEYS = ("responseBody", "requestbody")
# Protocols whose traffic has ports ("*" is every protocol; Icmp, Esp and Ah have none).
_PORTED = frozenset({"tcp", "udp", "*", "any", "all"})
# Sources that stand for every address; the service tag Internet is every address outside the
# virtual network, and AzureCloud every Azure datacenter address (anyone's VM among them).
_EVERY_ADDRESS = frozenset(
    {"*", "any", "internet", "0.0.0.0", "0.0.0.0/0", "::/0", "azurecloud"}  # noqa: S104 - sources
)
# Sources inside the network: the virtual network's own space and the platform's probes.
_INTERNAL_TAGS = frozenset({"virtualnetwork", "azureloadbalancer"})
# A public prefix this wide is the Internet for a rule's purposes: 0.0.0.0/1 and 128.0.0.0/1
# together say "any" without saying 0.0.0.0/0. No organisation's own range is a /8 or wider.
_INTERNET_PREFIX = {4: 8, 6: 32}
# Up to this wide it is a wide range (an ISP's or a cloud's block: a /16 is 65,536 addresses)
# rather than an organisation's own addresses.
_WIDE_PREFIX = {4: 16, 6: 40}
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


class Reach(IntEnum):
    """Who a source lets in, least first."""

    INTERNAL = 0
    SOME = 1
    WIDE = 2
    INTERNET = 3


def reach_of(source: str) -> Reach:
    """Who one source address prefix (a CIDR, an address, a service tag or ``*``) lets in."""
    text = source.strip().lower()
    if text in _EVERY_ADDRESS or text.startswith("azurecloud."):
        return Reach.INTERNET
    if text in _INTERNAL_TAGS:
        return Reach.INTERNAL
    first, dash, last = text.partition("-")
    try:
        if dash:
            # A range (Azure Firewall takes 10.0.0.1-10.0.0.9): the widest of its prefixes.
            low, high = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
            return max(reach_of(str(n)) for n in ipaddress.summarize_address_range(low, high))
        network = ipaddress.ip_network(text, strict=False)
    except (ValueError, TypeError):
        # Another service tag (Storage, GatewayManager, ...): named addresses, not everyone.
        return Reach.SOME
    if any(
        network.version == block.version and network.subnet_of(block)  # type: ignore[arg-type]
        for block in _NOT_PUBLIC
    ):
        return Reach.INTERNAL
    if network.prefixlen <= _INTERNET_PREFIX[network.version]:
        return Reach.INTERNET
    return Reach.WIDE if network.prefixlen <= _WIDE_PREFIX[network.version] else Reach.SOME


def port_span(value: object) -> tuple[int, int] | None:
    """A destination port value as (first, last): ``"22"``, ``"3000-4000"``, ``"*"``; None when
    it is none of these."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value) if 0 <= value <= 65535 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text in ("*", "Any", "any"):
        return ALL_PORTS
    first, dash, last = text.partition("-")
    try:
        low = int(first)
        high = int(last) if dash else low
    except ValueError:
        return None
    return (low, high) if 0 <= low <= high <= 65535 else None


def span_text(span: tuple[int, int]) -> str:
    """A port span as an NSG writes it."""
    if span == ALL_PORTS:
        return "*"
    return str(span[0]) if span[0] == span[1] else f"{span[0]}-{span[1]}"


@dataclass(frozen=True, slots=True)
class SecurityRule:
    """One NSG security rule as written: what it lets through, from where, to which ports."""

    name: str | None
    access: str
    direction: str
    # Lower case; several (a firewall rule's) joined by commas.
    protocol: str
    sources: tuple[str, ...]
    ports: tuple[tuple[int, int], ...]
    # Where a firewall's DNAT rule sends what it lets in (``50022 -> 10.0.1.4:22``: its public
    # ports, then the address and port inside), for the context.
    translated: str | None = None

    @property
    def allows_inbound(self) -> bool:
        """Whether the rule lets traffic in (rather than denying it, or letting it out)."""
        return self.access == "allow" and self.direction == "inbound"

    @property
    def has_ports(self) -> bool:
        """Whether a protocol of the rule carries ports (not ICMP, ESP or AH alone)."""
        return any(p in _PORTED for p in self.protocol.split(","))

    @property
    def reach(self) -> Reach:
        """Who the widest of its sources lets in (an application security group: internal)."""
        return max((reach_of(s) for s in self.sources), default=Reach.INTERNAL)

    def open_sources(self) -> list[str]:
        """The sources that let the whole Internet in."""
        return [s for s in self.sources if reach_of(s) is Reach.INTERNET]

    def holding(self, ports: Iterable[int]) -> list[int]:
        """Which of ``ports`` the rule's destination ports hold, in order, each once."""
        return sorted({p for p in ports for low, high in self.ports if low <= p <= high})

    @property
    def every_port(self) -> bool:
        """Whether the rule opens every port (``*`` or a range from 0 or 1 to 65535)."""
        return any(low <= 1 and high == 65535 for low, high in self.ports)

    def fingerprint(self) -> str:
        """What the rule lets in, the same however it is spelled: ports and sources, sorted."""
        ports = ",".join(span_text(span) for span in sorted(set(self.ports)))
        return f"{ports}|{','.join(sorted({s.lower() for s in self.sources}))}"

    def as_context(self) -> dict[str, Any]:
        """The rule as an alert's context shows it."""
        shown = {
            "name": self.name,
            "protocol": self.protocol,
            "sources": list(self.sources),
            "ports": [span_text(span) for span in self.ports],
        }
        return {**shown, "translated": self.translated} if self.translated else shown


def _text(properties: dict[str, Any], key: str) -> str:
    value = lookup(properties, key)
    return value.strip().lower() if isinstance(value, str) else ""


def _values(properties: dict[str, Any], one: str, many: str) -> list[object]:
    single = lookup(properties, one)
    several = lookup(properties, many)
    out: list[object] = [single] if single not in (None, "") else []
    if isinstance(several, list):
        out += [v for v in several if v not in (None, "")]
    return out


def security_rule(element: object, name: str | None = None) -> SecurityRule | None:
    """The rule an element of a body describes (``{"name", "properties": {...}}`` or the
    properties themselves), or None when it is not an object."""
    if not isinstance(element, dict):
        return None
    nested = lookup(element, "properties")
    properties = nested if isinstance(nested, dict) else element
    own = lookup(element, "name")
    spans = (
        port_span(v) for v in _values(properties, "destinationPortRange", "destinationPortRanges")
    )
    sources = _values(properties, "sourceAddressPrefix", "sourceAddressPrefixes")
    return SecurityRule(
        name=own if isinstance(own, str) and own else name,
        access=_text(properties, "access"),
        direction=_text(properties, "direction"),
        # A write that leaves the protocol out (a partial body) may carry any.
        protocol=_text(properties, "protocol") or "*",
        sources=tuple(str(s) for s in sources),
        ports=tuple(span for span in spans if span is not None),
    )


def labelled_bodies(event: Event) -> list[tuple[bool, dict[str, Any]]]:
    """The JSON objects an Activity Log record's bodies hold, each with whether it is what
    was asked for: what was written (the Success record's response body, False) before what
    was asked for (the Start record's request body, True)."""
    try:
        props = properties_of(decode_activity(bytes(event.raw)))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []
    found = ((key == "requestbody", json_value(lookup(props, key))) for key in _BODY_KEYS)
    return [(asked, body) for asked, body in found if isinstance(body, dict)]


def bodies(event: Event) -> list[dict[str, Any]]:
    """The JSON objects an Activity Log record's bodies hold: what was written (the Success
    record's response body) before what was asked for (the Start record's request body)."""
    return [body for _, body in labelled_bodies(event)]


def written_rules(event: Event) -> Sequence[SecurityRule]:
    """The security rules an NSG or NSG-rule write's record carries: the written ones (its
    response body) when it has them, else the asked-for ones (its request body)."""
    operation = (event.operation or "").strip().upper()
    resource = event.resource_id or ""
    for body in bodies(event):
        if operation == RULE_WRITE:
            rule = security_rule(body, resource.rstrip("/").rsplit("/", 1)[-1] or None)
            return (rule,) if rule is not None else ()
        if operation != NSG_WRITE:
            return ()
        nested = lookup(body, "properties")
        listed = lookup(nested, "securityRules") if isinstance(nested, dict) else None
        if isinstance(listed, list):
            return tuple(r for r in map(security_rule, listed) if r is not None)
    return ()


def named(resource_id: str | None, kind: str) -> str | None:
    """The name after the step ``kind`` (any case) of a resource id: ``networkSecurityGroups``
    in ``.../networkSecurityGroups/nsg-web/securityRules/rdp`` names ``nsg-web``."""
    parts = (resource_id or "").rstrip("/").split("/")
    lowered = [p.lower() for p in parts]
    index = lowered.index(kind.lower()) if kind.lower() in lowered else len(parts)
    return parts[index + 1] if index + 1 < len(parts) else None


def nsg_id(resource_id: str | None) -> str | None:
    """The id of the NSG a resource id is or lies in (an NSG rule's: its NSG's), or None."""
    parts = (resource_id or "").rstrip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "networksecuritygroups" not in lowered:
        return None
    return "/".join(parts[: lowered.index("networksecuritygroups") + 2])


def nsg_of(event: Event) -> str:
    """The name of the network security group an NSG or NSG-rule write acted on."""
    return named(event.resource_id, "networkSecurityGroups") or event.target_resource or "unknown"
