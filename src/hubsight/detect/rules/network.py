"""Network exposure: NSG and firewall rules that let the Internet (or someone) in, rule by rule.

The NSG rules read the same records (``exposure.written_rules``): an NSG rule's own write and
the write of a whole NSG with its rules inline, Start (request body) or Success (response
body); a failed write changed nothing. The firewall rule reads DNAT rules so (``dnat``). The
two phases of one write, and the writes of one resource by one caller within the dedup window,
make one alert. The NSG rules were Sigma rules; Sigma matches each field of a list on its own
and cannot tell whether a port range holds a port, so they are Python now, under the same ids.
Their examples are Event Hub records beside this module (``examples/<rule>.examples.json``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, ClassVar, TypeVar

from pydantic import Field

from hubsight.detect.base import (
    EventKind,
    EventRef,
    Example,
    Finding,
    Minutes,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
)
from hubsight.detect.content.examples import load_examples
from hubsight.detect.rules.dnat import (
    FIREWALL_WRITE,
    POLICY_GROUP_WRITE,
    dnat_rules,
    firewall_of,
)
from hubsight.detect.rules.exposure import (
    NSG_WRITE,
    RULE_WRITE,
    Reach,
    SecurityRule,
    nsg_id,
    nsg_of,
    reach_of,
    span_text,
    written_rules,
)
from hubsight.detect.rules.operations import failed, failed_result
from hubsight.detect.rules.signals import ADMIN_LOG_SETS
from hubsight.parsing.event import Event

EXAMPLES_DIR = Path(__file__).parent / "examples"
_PORT_NAMES = {22: "SSH", 23: "Telnet", 3389: "RDP", 5985: "WinRM", 5986: "WinRM over HTTPS"}
# Named sources a title shows before it counts the rest.
_SHOWN = 3
Port = Annotated[int, Field(ge=0, le=65535)]
C = TypeVar("C", bound=RuleConfig)


def port_name(port: int) -> str:
    """``RDP (3389)``, or ``port 8080`` for a port without a well-known name."""
    name = _PORT_NAMES.get(port)
    return f"{name} ({port})" if name else f"port {port}"


class ExposureRule(Rule[C]):
    """A rule over the network rules a write lets in: ``judge`` says what one exposes.

    By default the security rules of NSG writes; ``operations``, ``rules_of``, ``place`` and
    ``owner`` read other writes (a firewall's DNAT rules)."""

    operations: ClassVar[frozenset[str]] = frozenset({RULE_WRITE, NSG_WRITE})

    def reads(self, kind: EventKind) -> bool:
        """Writes of ``operations`` that did not fail."""
        return (
            super().reads(kind)
            and not failed_result(kind.result)
            and (kind.operation or "").strip().upper() in self.operations
        )

    def rules_of(self, event: Event) -> Sequence[SecurityRule]:
        """The rules the write carries."""
        return written_rules(event)

    def place(self, event: Event) -> str:
        """What the write changed, for titles: ``NSG nsg-web``."""
        return f"NSG {nsg_of(event)}"

    @abstractmethod
    def judge(self, rule: SecurityRule) -> tuple[Severity, str] | None:
        """The severity of what ``rule`` exposes and a phrase naming it, or None."""

    def match(self, event: Event) -> list[tuple[tuple[Severity, str], SecurityRule]] | None:
        """The rules of the write that expose, each with its verdict (None when none does):
        the rule judges each event alone, so a hunt can replay it (``EventMatcher``)."""
        if failed(event) or (event.operation or "").strip().upper() not in self.operations:
            return None
        judged = [
            (verdict, rule)
            for rule in self.rules_of(event)
            if rule.allows_inbound
            for verdict in [self.judge(rule)]
            if verdict is not None
        ]
        return judged or None

    def owner(self, event: Event) -> str:
        """The resource whose rules the write sets: the NSG (of a rule's own write too)."""
        return nsg_id(event.resource_id) or event.resource_id or "unknown"

    def title(self, phrase: str, place: str, rule: SecurityRule, actor: str) -> str:
        """An alert's title: what is open, where, by which rule, by whom."""
        return f"{phrase} in {place} (rule {rule.name or 'unnamed'}) by {actor}"

    def shown(self, rule: SecurityRule) -> dict[str, object]:
        """The rule as the alert's context shows it."""
        return rule.as_context()

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """One finding per rule that exposes. Its entity is the exposure (the rule's NSG, name,
        ports and sources), not the caller: a pipeline writing the same NSG again and again
        extends one alert per exposure; a rule opened wider is a new one."""
        judged = self.match(event)
        if judged is None:
            return
        actor = event.user or event.initiated_by_app or "unknown actor"
        place = self.place(event)
        owner = self.owner(event).lower()
        for (severity, phrase), rule in judged:
            name = rule.name or "unnamed"
            yield Finding(
                entity=f"{owner}|{name.lower()}|{rule.fingerprint()}",
                title=self.title(phrase, place, rule, actor),
                at=event.timestamp,
                evidence=[EventRef.of(event)],
                user=event.user,
                source_ip=event.source_ip,
                severity=severity,
                context={
                    "actor": actor,
                    "operation": event.operation,
                    "target": event.resource_id,
                    "place": place,
                    "rule": self.shown(rule),
                },
            )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """The records of ``examples/<rule name>.examples.json``, parsed."""
        return load_examples(EXAMPLES_DIR / f"{cls.meta.id.partition('.')[2]}.examples.json")


class ManagementPortConfig(RuleConfig):
    """The ports that administer a machine; a day's dedup window per exposure."""

    # An exposure written again within a day of its last write (a pipeline re-applying its
    # NSG) joins its alert.
    dedup_minutes: Minutes = 1440

    # SSH, RDP, WinRM over HTTP and HTTPS. Add Telnet (23), VNC (5900) or a database's port
    # where an open one matters as much.
    ports: tuple[Port, ...] = (22, 3389, 5985, 5986)


class ManagementPortOpened(ExposureRule[ManagementPortConfig]):
    """An NSG rule lets SSH, RDP or WinRM in: high from the Internet, medium from a wide range,
    low from named addresses."""

    meta = RuleMeta(
        id="network.nsg_rule_management_port",
        title="NSG rule opens a management port",
        description="A network security group rule allows inbound traffic to a management port "
        "(`ports`: SSH 22, RDP 3389, WinRM 5985/5986): as its port, in one of its ranges "
        "(3000-4000 holds 3389) or as every port (*), over TCP, UDP or any protocol. High when "
        "a source lets the Internet in (*, Any, Internet, AzureCloud, 0.0.0.0/0, ::/0, or a "
        "public prefix of /8 or wider, IPv6 /32), medium from a wide public range (/9 to /16, "
        "IPv6 to /40: an ISP's or a cloud's block), low when its sources are named public "
        "addresses or service tags; silent when they are all inside the network (VirtualNetwork, "
        "AzureLoadBalancer, private ranges, application security groups). Reads an NSG rule's "
        "own write and an NSG written whole with its rules inline (templates, Terraform, the "
        "portal), on the Start record (the request body) or the Success record (the response "
        "body). One alert per exposure (the rule, its ports and sources): written again within "
        "`dedup_minutes` (a day), alone or with its whole NSG by a pipeline, it joins that "
        "alert; opened wider, it is a new one. Just-in-time access writes such rules, from one "
        "address, for a while: those are low (except its application by `apps`).",
        severity=Severity.HIGH,
        technique="T1133",
        log_sets=ADMIN_LOG_SETS,
        runbook="Ask the caller why; close the port to the Internet at once (delete the rule or "
        "set its source to the admins' addresses), and use Bastion or just-in-time access "
        "instead. If it was open, look for sign-ins to the machines behind the NSG since.",
        family="network",
        tactics=("initial-access", "persistence"),
    )
    config_type = ManagementPortConfig

    def judge(self, rule: SecurityRule) -> tuple[Severity, str] | None:
        """The management ports the rule opens, and to whom."""
        ports = rule.holding(self.config.ports) if rule.has_ports else []
        reach = rule.reach
        if not ports or reach is Reach.INTERNAL:
            return None
        names = ", ".join(port_name(p) for p in ports)
        if reach is Reach.INTERNET:
            sources = ", ".join(rule.open_sources())
            return Severity.HIGH, f"{names} open to the Internet (source {sources})"
        named = [s for s in rule.sources if reach_of(s) is reach]
        shown = ", ".join(named[:_SHOWN]) + (
            f" and {len(named) - _SHOWN} more" if len(named) > _SHOWN else ""
        )
        if reach is Reach.WIDE:
            return Severity.MEDIUM, f"{names} open to a wide range ({shown})"
        return Severity.LOW, f"{names} open to {shown}"


class FirewallDnatManagementPort(ManagementPortOpened):
    """A firewall DNAT rule forwards SSH, RDP or WinRM in: high from the Internet."""

    meta = RuleMeta(
        id="network.firewall_dnat_management_port",
        title="Firewall DNAT rule publishes a management port",
        description="An Azure Firewall DNAT rule forwards traffic to a management port inside "
        "(`ports`: SSH 22, RDP 3389, WinRM 5985/5986): its translated port, or its public "
        "port when it names no translated one (50022 forwarded to 22 is SSH). Reads the rule "
        "collection groups of firewall policies (FirewallPolicyNatRuleCollection) and the NAT "
        "rule collections of classic firewalls, on the Start record (the request body) or the "
        "Success record (the response body). High when a source lets the Internet in (*, "
        "0.0.0.0/0, a public prefix of /8 or wider), medium from a wide public range (/9 to "
        "/16), low when its sources are named addresses or IP groups, silent when they are all "
        "private. One alert per exposure: the group "
        "written again within `dedup_minutes` (a day) joins it. Network "
        "and application rules are not read: they filter traffic already inside or leaving.",
        severity=Severity.HIGH,
        technique="T1133",
        log_sets=ADMIN_LOG_SETS,
        runbook="Ask the caller why; remove the DNAT rule or restrict its sources to the "
        "admins' addresses, and use Bastion or just-in-time access instead. If it was open, "
        "look for sign-ins to the translated address since.",
        family="network",
        tactics=("initial-access", "persistence"),
    )
    operations = frozenset({POLICY_GROUP_WRITE, FIREWALL_WRITE})

    def rules_of(self, event: Event) -> Sequence[SecurityRule]:
        """The DNAT rules the write carries."""
        return dnat_rules(event)

    def place(self, event: Event) -> str:
        """``rule collection group dnat of firewall policy fwp-hub``, or ``firewall fw-hub``."""
        return firewall_of(event)

    def owner(self, event: Event) -> str:
        """The rule collection group or the classic firewall."""
        return event.resource_id or "unknown"


class AnySourceConfig(RuleConfig):
    """The ports a public web front end opens to everyone by design; a day's dedup window."""

    dedup_minutes: Minutes = 1440

    web_ports: tuple[Port, ...] = (80, 443)


class AnySourceOpened(ExposureRule[AnySourceConfig]):
    """An NSG rule lets the whole Internet in, to any port."""

    meta = RuleMeta(
        id="network.nsg_rule_any_source",
        title="NSG rule allows inbound traffic from anywhere",
        description="A network security group rule allows inbound traffic from any address: "
        "one of its sources is *, Any, Internet, AzureCloud (every Azure customer's machines), "
        "0.0.0.0/0, ::/0 or a public prefix of /8 or wider (IPv6 /32; two /1s say 'any' "
        "without saying 0.0.0.0/0). High when it opens every port (* or 0/1-65535), low when "
        "it opens only `web_ports` (80 and 443: what a public web front end opens by design), "
        "medium for other ports or protocols. Reads an NSG rule's "
        "own write and an NSG written whole with its rules inline, on the Start record (the "
        "request body) or the Success record (the response body). One alert per exposure: "
        "written again within `dedup_minutes` (a day), alone or with its whole NSG, it joins "
        "that alert. A management port open to the Internet also raises "
        "network.nsg_rule_management_port.",
        severity=Severity.MEDIUM,
        technique="T1562.007",
        log_sets=ADMIN_LOG_SETS,
        runbook="Ask the caller why it was opened; restrict the rule's source to known "
        "addresses, or put the service behind Application Gateway or Front Door. Add the ports "
        "your public services open by design to web_ports.",
        family="network",
        tactics=("defense-evasion",),
    )
    config_type = AnySourceConfig

    def judge(self, rule: SecurityRule) -> tuple[Severity, str] | None:
        """Whether a source lets the Internet in, and to how many ports."""
        if rule.reach is not Reach.INTERNET:
            return None
        sources = ", ".join(rule.open_sources())
        if rule.has_ports and rule.every_port:
            return Severity.HIGH, f"every port open to any address ({sources})"
        if not (rule.has_ports and rule.ports):
            return (
                Severity.MEDIUM,
                f"protocol {rule.protocol.upper()} open to any address ({sources})",
            )
        ports = ", ".join(span_text(span) for span in rule.ports)
        what = f"port {ports}" if len(rule.ports) == 1 else f"ports {ports}"
        web = all(low == high and low in self.config.web_ports for low, high in rule.ports)
        return Severity.LOW if web else Severity.MEDIUM, f"{what} open to any address ({sources})"


RULES = (ManagementPortOpened, AnySourceOpened, FirewallDnatManagementPort)
