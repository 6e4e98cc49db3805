"""Azure Firewall and Web Application Firewall decisions, normalized into Firewall Activity.

Three shapes, from Microsoft's schemas: the legacy firewall categories
(``AzureFirewallNetworkRule``, ``AzureFirewallApplicationRule``, ``AzureFirewallDnsProxy``)
describe the flow in one sentence, ``properties.msg``; the structured ``AZFW*`` categories
carry it as fields (``SourceIp``, ``DestinationPort``, ``Action``, ``Rule``, ``Fqdn``, ...);
and the WAF categories (``ApplicationGatewayFirewallLog``,
``FrontDoorWebApplicationFirewallLog``) name the client, the request and the matched rule.
"""

from __future__ import annotations

import re
from typing import Any

from hubsight.parsing.azure.activity import lookup
from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import as_int, blanks_to_none, nonempty, set_source
from hubsight.parsing.azure.resourcelog import read_resource_log
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.geoip import split_address

LEGACY_CATEGORIES = (
    "AzureFirewallNetworkRule",
    "AzureFirewallApplicationRule",
    "AzureFirewallDnsProxy",
)
STRUCTURED_CATEGORIES = (
    "AZFWNetworkRule",
    "AZFWApplicationRule",
    "AZFWNatRule",
    "AZFWThreatIntel",
    "AZFWIdpsSignature",
    "AZFWDnsQuery",
    "AZFWFqdnResolveFailure",
    "AZFWFatFlow",
    "AZFWFlowTrace",
    "AZFWNetworkRuleAggregation",
    "AZFWApplicationRuleAggregation",
    "AZFWNatRuleAggregation",
)
WAF_CATEGORIES = ("ApplicationGatewayFirewallLog", "FrontDoorWebApplicationFirewallLog")

# "TCP request from 10.0.2.4:51990 to 13.69.65.17:443. Action: Allow. Rule Collection: c. Rule: r"
# "HTTPS request from 10.1.0.5:55640 to api.github.com:443. Url: ... Action: Deny. No rule matched"
# "TCP request from 1.2.3.4:5 to 20.1.1.1:3389 was DNAT'ed to 10.0.0.4:3389"
_FLOW = re.compile(
    r"^(?P<protocol>[A-Za-z0-9]+)(?: Type=\d+)? request from (?P<source>\S+?) to "
    r"(?P<destination>\S+?)(?:\.\s|\s|\.?$)"
)
# After the flow, "Key: value" parts separated by ". ": Action, Policy, Rule Collection Group,
# Rule Collection, Rule, Web Category, ThreatIntel, Signature, IDS, ... A value ends at the next
# ". " (dots inside a URL or name stay), so a rule is never read with the web category after it
# and an action not with a sentence such as "No rule matched" after it.
_PART = re.compile(r"(?:^|\.\s+)(?P<key>[A-Z][A-Za-z ]*?): (?P<value>(?:[^.]|\.(?!\s|$))*)")
# The translation may be followed by the rule's parts (". Policy: ... Rule: ...").
_DNAT = re.compile(r"was DNAT'ed to (?P<translated>\S+?)(?:\.\s|\.?$)")
# Legacy DNS proxy messages (the documentation writes the dash as an en dash):
# "DNS Request: 10.1.0.4:60113 - 42567 A IN api.github.com. udp 46 false 512 NOERROR ..."
# " Error: 2 time.windows.com.reddog.microsoft.com. A: read udp 10.1.0.5:49126->168.63.129.160:53:
#   i/o timeout"
_DNS_REQUEST = re.compile(
    r"^\s*DNS Request: (?P<source>\S+) [-\u2013] \S+ \S+ \S+ (?P<name>\S+) "
    r"(?P<protocol>\S+) \S+ \S+ \S+ (?P<code>[A-Z]+)\b"
)
_DNS_ERROR = re.compile(
    r"^\s*Error: \S+ (?P<name>\S+) \S+: \w+ (?P<protocol>\w+) (?P<source>\S+?)->"
    r"(?P<destination>\S+?): "
)
_RULE_PARTS = ("Policy", "Rule Collection Group", "Rule Collection", "Rule")
# Actions that stopped the traffic, and those that only reported it.
_DENIED = frozenset({"deny", "denied", "block", "blocked", "drop", "reject"})
_DETECTED = frozenset({"matched", "detected", "log", "alert", "anomalyscoring"})


class FirewallParser:
    """Normalizes Azure Firewall and WAF records into Firewall Activity."""

    categories = LEGACY_CATEGORIES + STRUCTURED_CATEGORIES + WAF_CATEGORIES

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._legacy = frozenset(c.lower() for c in LEGACY_CATEGORIES)
        self._waf = frozenset(c.lower() for c in WAF_CATEGORIES)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one firewall or WAF record."""
        event, head, props = read_resource_log(record, ctx, LogSet.FIREWALL_ACTIVITY, self._geoip)
        category = (head.category or "").lower()
        if category in self._legacy:
            event.service = "Azure Firewall"
            source = self._legacy_flow(event, nonempty(lookup(props, "msg")) or "")
        elif category in self._waf:
            event.service = "Web Application Firewall"
            source = self._waf_request(event, props)
        else:
            event.service = "Azure Firewall"
            source = self._structured_flow(event, props)
        set_source(event, source, self._geoip)
        port = as_int(lookup(props, "SourcePort", "clientPort"))
        if event.source_port is None and port is not None:
            event.source_port = port
        if event.action:
            event.action = event.action.lower()
            event.result = action_result(event.action)
        return blanks_to_none(event)

    def _legacy_flow(self, event: Event, message: str) -> str | None:
        event.description = message or None
        flow = _FLOW.match(message)
        if flow is None:
            return _legacy_dns(event, message)
        event.protocol = flow["protocol"].upper()
        _set_destination(event, flow["destination"])
        parts = {m["key"]: m["value"].strip() for m in _PART.finditer(message[flow.end() :])}
        dnat = _DNAT.search(message)
        event.action = parts.get("Action") or ("Dnat" if dnat else None)
        event.url = parts.get("Url") or None
        rule = "/".join(parts[key] for key in _RULE_PARTS if parts.get(key))
        event.rule = rule or parts.get("Signature") or None
        return flow["source"]

    def _structured_flow(self, event: Event, props: dict[str, Any]) -> str | None:
        event.protocol = _upper(lookup(props, "Protocol"))
        event.destination_ip = nonempty(lookup(props, "DestinationIp", "TranslatedIp"))
        event.destination_port = as_int(lookup(props, "DestinationPort", "TranslatedPort"))
        event.fqdn = nonempty(lookup(props, "Fqdn", "QueryName"))
        # A DNS query's response code (NOERROR, NXDOMAIN, SERVFAIL), as the legacy log gives it.
        event.status = nonempty(lookup(props, "ResponseCode"))
        event.url = nonempty(lookup(props, "TargetUrl"))
        event.action = nonempty(lookup(props, "Action"))
        parts = [
            nonempty(lookup(props, key))
            for key in ("Policy", "RuleCollectionGroup", "RuleCollection", "Rule")
        ]
        event.rule = "/".join(p for p in parts if p) or nonempty(lookup(props, "SignatureId"))
        event.description = nonempty(
            lookup(props, "ActionReason", "ThreatDescription", "Description", "Error")
        )
        return nonempty(lookup(props, "SourceIp"))

    def _waf_request(self, event: Event, props: dict[str, Any]) -> str | None:
        event.protocol = "HTTP"
        event.url = nonempty(lookup(props, "requestUri"))
        event.fqdn = nonempty(lookup(props, "hostname", "host"))
        event.action = nonempty(lookup(props, "action"))
        event.rule = nonempty(lookup(props, "ruleName", "ruleId"))
        event.description = nonempty(lookup(props, "message"))
        ruleset = nonempty(lookup(props, "ruleSetType"))
        if ruleset and event.rule and not event.rule.startswith(ruleset):
            event.rule = f"{ruleset}-{lookup(props, 'ruleSetVersion') or ''}-{event.rule}"
        return nonempty(lookup(props, "clientIp", "clientIP"))


def _legacy_dns(event: Event, message: str) -> str | None:
    """Read a legacy DNS proxy message: the client, the name asked and the response code."""
    request = _DNS_REQUEST.match(message)
    if request is not None:
        event.fqdn = request["name"]
        event.protocol = request["protocol"].upper()
        event.status = request["code"]
        return request["source"]
    error = _DNS_ERROR.match(message)
    if error is not None:
        event.fqdn = error["name"]
        event.protocol = error["protocol"].upper()
        _set_destination(event, error["destination"])
        return error["source"]
    return None


def _set_destination(event: Event, destination: str) -> None:
    address = split_address(destination)
    if address is not None:
        event.destination_ip, event.destination_port = address
        return
    host, _, port = destination.rpartition(":")
    if host and port.isdigit():
        event.fqdn, event.destination_port = host, int(port)
    else:
        event.fqdn = destination


def _upper(value: object) -> str | None:
    text = nonempty(value)
    return text.upper() if text else None


def action_result(action: str) -> str:
    """DENIED when the traffic was stopped, DETECTED when only reported, else ALLOWED."""
    lowered = action.lower()
    if lowered in _DENIED:
        return "DENIED"
    if lowered in _DETECTED:
        return "DETECTED"
    return "ALLOWED"
