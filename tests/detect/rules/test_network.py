"""Network exposure rules beyond their examples: ports, sources, the phases of one write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubsight.detect.base import Severity
from hubsight.detect.content.examples import load_examples
from hubsight.detect.rules.exposure import Reach, port_span, reach_of
from hubsight.detect.rules.network import (
    AnySourceOpened,
    FirewallDnatManagementPort,
    ManagementPortOpened,
)
from hubsight.detect.ruleset import build_rule, run_example
from hubsight.errors import SettingError

from tests.detect.rules.bodies import BODY_KEYS, judge_body, values

NSG = (
    "/subscriptions/3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9/resourceGroups/rg-prod/providers/"
    "Microsoft.Network/networkSecurityGroups/nsg-web"
)
RULE_WRITE = "Microsoft.Network/networkSecurityGroups/securityRules/write"


@pytest.mark.parametrize(
    ("value", "span"),
    [
        ("22", (22, 22)),
        (" 3389 ", (3389, 3389)),
        ("3000-4000", (3000, 4000)),
        ("*", (0, 65535)),
        (443, (443, 443)),
        ("4000-3000", None),
        ("70000", None),
        ("ssh", None),
        (True, None),
        (None, None),
    ],
)
def test_port_values_are_read_as_spans(value: object, span: tuple[int, int] | None) -> None:
    assert port_span(value) == span


@pytest.mark.parametrize(
    ("source", "reach"),
    [
        ("*", Reach.INTERNET),
        ("Any", Reach.INTERNET),
        ("Internet", Reach.INTERNET),
        ("AzureCloud", Reach.INTERNET),
        ("AzureCloud.WestEurope", Reach.INTERNET),
        ("0.0.0.0/0", Reach.INTERNET),
        ("::/0", Reach.INTERNET),
        # Python calls 0.0.0.0/1 private (it starts in 0/8 and ends in 127/8): it is not.
        ("0.0.0.0/1", Reach.INTERNET),
        ("45.0.0.0/8", Reach.INTERNET),
        ("2000::/3", Reach.INTERNET),
        ("45.0.0.0/9", Reach.WIDE),
        ("20.38.0.0/16", Reach.WIDE),
        ("20.38.0.0/17", Reach.SOME),
        ("2a01:110::/40", Reach.WIDE),
        ("20.38.0.0-20.38.255.255", Reach.WIDE),
        ("203.0.113.7", Reach.SOME),
        ("2001:db8::/48", Reach.SOME),
        ("Storage", Reach.SOME),
        ("VirtualNetwork", Reach.INTERNAL),
        ("AzureLoadBalancer", Reach.INTERNAL),
        ("10.0.0.0/8", Reach.INTERNAL),
        ("172.16.4.0/24", Reach.INTERNAL),
        ("192.168.1.10", Reach.INTERNAL),
        ("fd00::/8", Reach.INTERNAL),
        # Azure Firewall takes address ranges: graded by the widest of the prefixes they span.
        ("0.0.0.0-255.255.255.255", Reach.INTERNET),
        ("203.0.113.1-203.0.113.9", Reach.SOME),
        ("10.0.0.1-10.0.0.9", Reach.INTERNAL),
        ("9.255.255.255-10.0.0.1", Reach.SOME),
        ("10.0.0.9-10.0.0.1", Reach.SOME),
        ("10.0.0.1-::1", Reach.SOME),
    ],
)
def test_sources_are_graded_by_who_they_let_in(source: str, reach: Reach) -> None:
    assert reach_of(source) is reach


def _body(**properties: Any) -> str:
    rule = {
        "protocol": "Tcp",
        "sourceAddressPrefix": "*",
        "destinationPortRange": "3389",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 110,
    }
    return json.dumps({"properties": {**rule, **properties}})


def _examples(tmp_path: Path, *specs: dict[str, Any]) -> list[Any]:
    path = tmp_path / "nsg.examples.json"
    path.write_text(json.dumps({"record": "administrative", "fires": list(specs)}))
    return load_examples(path)


def _start(body: str, **extra: Any) -> dict[str, Any]:
    return {
        "operation": RULE_WRITE,
        "resource": f"{NSG}/securityRules/allow-rdp",
        "stage": "Start",
        "signature": "Started.",
        "requestbody": body,
        "set": {"properties.statusCode": None},
        **extra,
    }


def test_the_start_and_success_of_one_write_make_one_alert(tmp_path: Path) -> None:
    success = {
        "operation": RULE_WRITE,
        "resource": f"{NSG}/securityRules/allow-rdp",
        "time": "2026-03-02T09:00:03.0000000Z",
        "set": {"properties.responseBody": _body(), "properties.requestbody": None},
    }
    (example,) = _examples(tmp_path, {"name": "both", "records": [_start(_body()), success]})
    (alert,) = run_example(build_rule(ManagementPortOpened, {}), example)
    assert alert.severity is Severity.HIGH
    assert len(alert.evidence) == 2
    assert alert.title == (
        "RDP (3389) open to the Internet (source *) in NSG nsg-web (rule allow-rdp) "
        "by carol.admin@contoso.com"
    )
    assert alert.context["rule"] == {
        "name": "allow-rdp",
        "protocol": "tcp",
        "sources": ["*"],
        "ports": ["3389"],
    }


def test_each_rule_of_a_whole_nsg_write_that_exposes_is_an_alert_of_its_own(
    tmp_path: Path,
) -> None:
    office = _body(sourceAddressPrefix="203.0.113.7", destinationPortRange="22")
    rules = [
        {"name": "office-ssh", **json.loads(office)},
        {"name": "any-rdp", **json.loads(_body())},
    ]
    spec = _start(json.dumps({"properties": {"securityRules": rules}}))
    spec.update(operation="Microsoft.Network/networkSecurityGroups/write", resource=NSG)
    (example,) = _examples(tmp_path, spec)
    alerts = run_example(build_rule(ManagementPortOpened, {}), example)
    graded = sorted((a.context["rule"]["name"], a.severity.value) for a in alerts)
    assert graded == [("any-rdp", "High"), ("office-ssh", "Low")]
    # The NSG's rule written on its own later is the same exposure: it joins its alert.
    alone = _start(_body(), time="2026-03-02T15:00:00.0000000Z")
    alone["resource"] = f"{NSG}/securityRules/any-rdp"
    (both,) = _examples(tmp_path, {"name": "twice", "records": [spec, alone]})
    alerts = run_example(build_rule(ManagementPortOpened, {}), both)
    assert sorted(len(a.evidence) for a in alerts) == [1, 2]
    # With the dedup window cut to an hour, six hours later is a new alert.
    hourly = run_example(build_rule(ManagementPortOpened, {"dedup_minutes": 60}), both)
    assert len(hourly) == 3


def test_management_ports_are_a_setting_with_bounds(tmp_path: Path) -> None:
    (telnet,) = _examples(tmp_path, _start(_body(destinationPortRange="20-23")))
    default = run_example(build_rule(ManagementPortOpened, {}), telnet)
    assert [a.title.split(" open")[0] for a in default] == ["SSH (22)"]
    rule = build_rule(ManagementPortOpened, {"ports": ["23"]})
    assert [a.title.split(" open")[0] for a in run_example(rule, telnet)] == ["Telnet (23)"]
    with pytest.raises(SettingError, match="ports"):
        build_rule(ManagementPortOpened, {"ports": [70000]})


def test_web_ports_are_low_until_taken_out_of_the_setting(tmp_path: Path) -> None:
    (https,) = _examples(tmp_path, _start(_body(destinationPortRange="443")))
    default = run_example(build_rule(AnySourceOpened, {}), https)
    assert [a.severity for a in default] == [Severity.LOW]
    none = run_example(build_rule(AnySourceOpened, {"web_ports": []}), https)
    assert [a.severity for a in none] == [Severity.MEDIUM]


def test_a_dnat_rule_is_judged_by_the_port_it_forwards_to_and_says_so(tmp_path: Path) -> None:
    rule = {
        "ruleType": "NatRule",
        "name": "ssh",
        "ipProtocols": ["TCP"],
        "sourceAddresses": ["*"],
        "destinationAddresses": ["20.61.15.4"],
        "destinationPorts": ["50022"],
        "translatedAddress": "10.0.1.4",
        "translatedPort": "22",
    }
    collection = {
        "ruleCollectionType": "FirewallPolicyNatRuleCollection",
        "name": "dnat",
        "action": {"type": "DNAT"},
        "rules": [rule],
    }
    spec = _start(json.dumps({"properties": {"ruleCollections": [collection]}}))
    spec.update(
        operation="Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
        resource=NSG.replace("networkSecurityGroups/nsg-web", "firewallPolicies/fwp-hub")
        + "/ruleCollectionGroups/publish",
    )
    (example,) = _examples(tmp_path, spec)
    (alert,) = run_example(build_rule(FirewallDnatManagementPort, {}), example)
    assert alert.title.startswith(
        "SSH (22) open to the Internet (source *) in rule collection group publish of "
        "firewall policy fwp-hub (rule ssh)"
    )
    assert alert.context["rule"]["translated"] == "50022 -> 10.0.1.4:22"
    # The NSG rules do not read firewall writes, nor the firewall rule NSG writes.
    assert run_example(build_rule(ManagementPortOpened, {}), example) == []
    (nsg,) = _examples(tmp_path, _start(_body()))
    assert run_example(build_rule(FirewallDnatManagementPort, {}), nsg) == []


_KEYS = [
    "properties", "securityRules", "name", "access", "direction", "protocol",
    "sourceAddressPrefix", "sourceAddressPrefixes", "destinationPortRange",
    "destinationPortRanges", "ruleCollections", "ruleCollectionType", "rules",
    "natRuleCollections", "action", "type", "sourceAddresses", "sourceIpGroups",
    "destinationPorts", "translatedPort", "translatedAddress", "ipProtocols", "protocols",
]  # fmt: skip
_WORDS = [
    "*", "Any", "Allow", "Inbound", "Tcp", "Icmp", "22", "3389", "1-65535", "70000-1",
    "0.0.0.0/0", "::/0", "0.0.0.0/1", "203.0.113.7", "10.0.0.1-10.0.0.9", "1.2.3.4-::1",
    "Internet", "FirewallPolicyNatRuleCollection", "Dnat", "DNAT", "",
]  # fmt: skip
_OPERATIONS = st.sampled_from(
    [
        "Microsoft.Network/networkSecurityGroups/securityRules/write",
        "Microsoft.Network/networkSecurityGroups/write",
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
        "Microsoft.Network/azureFirewalls/write",
    ]
)


@settings(max_examples=200, deadline=None)
@given(body=values(_KEYS, _WORDS), operation=_OPERATIONS, key=BODY_KEYS, text=st.booleans())
def test_any_body_is_judged_without_error(
    body: object, operation: str, key: str, text: bool
) -> None:
    # Bodies are JSON text in the records, but a shape that holds them as objects must pass too.
    rules = (ManagementPortOpened, AnySourceOpened, FirewallDnatManagementPort)
    judge_body(rules, operation, f"{NSG}/securityRules/x", key, body, text=text)
