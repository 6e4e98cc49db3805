"""ATT&CK coverage of the enabled rules: tactics x techniques, the data each needs, blind rules.

Not to be confused with ``coverage.py``, which scores alerts against the simulator's truth.
A rule is *blind* when none of the Azure log categories it reads delivered an event in the
last 24 hours: it cannot fire, whatever happens in the tenant. The technique names and tactics
are MITRE ATT&CK's (Enterprise, v16; ATT&CK is (c) The MITRE Corporation, used under its
terms of use), for the techniques hubsight's rules name; a technique missing here is listed
as unmapped rather than dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hubsight.detect.base import Rule
from hubsight.detect.sigma import SigmaDetection
from hubsight.detect.sigma.correlation import SigmaCorrelation
from hubsight.parsing.azure.activity import ADMIN_CATEGORIES, SERVICE_CATEGORIES
from hubsight.parsing.azure.audit import AUDIT_CATEGORY
from hubsight.parsing.azure.defender import SECURITY_ALERT
from hubsight.parsing.azure.provisioning import PROVISIONING_CATEGORY
from hubsight.parsing.azure.risk import DETECTION_CATEGORIES, STATE_CATEGORIES
from hubsight.parsing.azure.signin import SIGNIN_CATEGORIES
from hubsight.parsing.event import LogSet
from hubsight.store.base import EventStore
from hubsight.store.schema import EVENTS_TABLE

DAY = timedelta(hours=24)

# Tactics in the order of the ATT&CK matrix, with the short names Navigator layers use.
TACTICS = {
    "Reconnaissance": "reconnaissance",
    "Resource Development": "resource-development",
    "Initial Access": "initial-access",
    "Execution": "execution",
    "Persistence": "persistence",
    "Privilege Escalation": "privilege-escalation",
    "Defense Evasion": "defense-evasion",
    "Credential Access": "credential-access",
    "Discovery": "discovery",
    "Lateral Movement": "lateral-movement",
    "Collection": "collection",
    "Command and Control": "command-and-control",
    "Exfiltration": "exfiltration",
    "Impact": "impact",
}
_IA, _EX, _PE, _PR = "Initial Access", "Execution", "Persistence", "Privilege Escalation"
_DE, _CA, _DI, _LM = "Defense Evasion", "Credential Access", "Discovery", "Lateral Movement"
_CO, _C2, _EF, _IM = "Collection", "Command and Control", "Exfiltration", "Impact"
# Technique (or sub-technique) id -> name and tactics. Sub-techniques share their parent's.
TECHNIQUES: dict[str, tuple[str, tuple[str, ...]]] = {
    "T1021": ("Remote Services", (_LM,)),
    "T1039": ("Data from Network Shared Drive", (_CO,)),
    "T1040": ("Network Sniffing", (_CA, _DI)),
    "T1048": ("Exfiltration Over Alternative Protocol", (_EF,)),
    "T1053": ("Scheduled Task/Job", (_EX, _PE, _PR)),
    "T1070": ("Indicator Removal", (_DE,)),
    "T1072": ("Software Deployment Tools", (_EX, _LM)),
    "T1078": ("Valid Accounts", (_DE, _PE, _PR, _IA)),
    "T1078.001": ("Valid Accounts: Default Accounts", (_DE, _PE, _PR, _IA)),
    "T1078.004": ("Valid Accounts: Cloud Accounts", (_DE, _PE, _PR, _IA)),
    "T1087.004": ("Account Discovery: Cloud Account", (_DI,)),
    "T1090.003": ("Proxy: Multi-hop Proxy", (_C2,)),
    "T1098": ("Account Manipulation", (_PE, _PR)),
    "T1098.001": ("Account Manipulation: Additional Cloud Credentials", (_PE, _PR)),
    "T1098.003": ("Account Manipulation: Additional Cloud Roles", (_PE, _PR)),
    "T1098.004": ("Account Manipulation: SSH Authorized Keys", (_PE, _PR)),
    "T1110": ("Brute Force", (_CA,)),
    "T1110.001": ("Brute Force: Password Guessing", (_CA,)),
    "T1110.003": ("Brute Force: Password Spraying", (_CA,)),
    "T1114.002": ("Email Collection: Remote Email Collection", (_CO,)),
    "T1133": ("External Remote Services", (_PE, _IA)),
    "T1136.003": ("Create Account: Cloud Account", (_PE,)),
    "T1190": ("Exploit Public-Facing Application", (_IA,)),
    "T1199": ("Trusted Relationship", (_IA,)),
    "T1484": ("Domain or Tenant Policy Modification", (_DE, _PR)),
    "T1484.002": ("Domain or Tenant Policy Modification: Trust Modification", (_DE, _PR)),
    "T1485": ("Data Destruction", (_IM,)),
    "T1486": ("Data Encrypted for Impact", (_IM,)),
    "T1489": ("Service Stop", (_IM,)),
    "T1490": ("Inhibit System Recovery", (_IM,)),
    "T1496": ("Resource Hijacking", (_IM,)),
    "T1496.001": ("Resource Hijacking: Compute Hijacking", (_IM,)),
    "T1498": ("Network Denial of Service", (_IM,)),
    "T1528": ("Steal Application Access Token", (_CA,)),
    "T1530": ("Data from Cloud Storage", (_CO,)),
    "T1531": ("Account Access Removal", (_IM,)),
    "T1537": ("Transfer Data to Cloud Account", (_EF,)),
    "T1546": ("Event Triggered Execution", (_PR, _PE)),
    "T1550.004": ("Use Alternate Authentication Material: Web Session Cookie", (_DE, _LM)),
    "T1552": ("Unsecured Credentials", (_CA,)),
    "T1552.004": ("Unsecured Credentials: Private Keys", (_CA,)),
    "T1552.007": ("Unsecured Credentials: Container API", (_CA,)),
    "T1555.006": ("Credentials from Password Stores: Cloud Secrets Management Stores", (_CA,)),
    "T1556": ("Modify Authentication Process", (_CA, _DE, _PE)),
    "T1556.006": ("Modify Authentication Process: Multi-Factor Authentication", (_CA, _DE, _PE)),
    "T1556.007": ("Modify Authentication Process: Hybrid Identity", (_CA, _DE, _PE)),
    "T1557": ("Adversary-in-the-Middle", (_CA, _CO)),
    "T1562": ("Impair Defenses", (_DE,)),
    "T1562.001": ("Impair Defenses: Disable or Modify Tools", (_DE,)),
    "T1562.006": ("Impair Defenses: Indicator Blocking", (_DE,)),
    "T1562.007": ("Impair Defenses: Disable or Modify Cloud Firewall", (_DE,)),
    "T1562.008": ("Impair Defenses: Disable or Modify Cloud Logs", (_DE,)),
    "T1566.002": ("Phishing: Spearphishing Link", (_IA,)),
    "T1580": ("Cloud Infrastructure Discovery", (_DI,)),
    "T1599": ("Network Boundary Bridging", (_DE,)),
    "T1609": ("Container Administration Command", (_EX,)),
    "T1611": ("Escape to Host", (_PR,)),
    "T1621": ("Multi-Factor Authentication Request Generation", (_CA,)),
    "T1648": ("Serverless Execution", (_EX,)),
    "T1651": ("Cloud Administration Command", (_EX,)),
}


def _log_set_categories() -> dict[LogSet, tuple[str, ...]]:
    """The Azure categories whose records land in each log set, from the parsers' own tables."""
    by_set: dict[LogSet, list[str]] = {}
    for category, (log_set, _, _) in SIGNIN_CATEGORIES.items():
        by_set.setdefault(log_set, []).append(category)
    by_set.setdefault(LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY, []).extend(
        [*ADMIN_CATEGORIES, AUDIT_CATEGORY]
    )
    by_set.setdefault(LogSet.CLOUD_SERVICE_ACTIVITY, []).extend(
        [*SERVICE_CATEGORIES, PROVISIONING_CATEGORY, *STATE_CATEGORIES]
    )
    by_set.setdefault(LogSet.THIRD_PARTY_ALERTS, []).extend(
        ["Security", SECURITY_ALERT, *DETECTION_CATEGORIES]
    )
    return {log_set: tuple(names) for log_set, names in by_set.items()}


LOG_SET_CATEGORIES = _log_set_categories()


@dataclass(frozen=True, slots=True)
class RuleCoverage:
    """One enabled rule: its technique, the categories it reads and whether any delivered."""

    id: str
    title: str
    technique: str
    categories: dict[str, int]
    log_sets: tuple[str, ...]
    # A Sigma correlation: it can be hunted but has no LEQL form to open in Log Search.
    correlation: bool = False

    @property
    def blind(self) -> bool:
        """No category the rule reads delivered an event in the window."""
        return not any(self.categories.values())

    def to_json(self) -> dict[str, Any]:
        """As the API and ``--format json`` list it."""
        return {
            "id": self.id,
            "title": self.title,
            "log_sets": list(self.log_sets),
            "categories": [{"name": c, "events_24h": n} for c, n in self.categories.items()],
            "blind": self.blind,
            "correlation": self.correlation,
        }


def delivered(store: EventStore, now: datetime, window: timedelta = DAY) -> dict[str, int]:
    """Events received per Azure category in the ``window`` before ``now``."""
    rows = store.select(
        f"SELECT category, count() AS n FROM {EVENTS_TABLE} "  # noqa: S608 - parameters
        "WHERE received_time >= {since:DateTime64(3, 'UTC')} AND category != '' "
        "GROUP BY category",
        {"since": (now - window).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]},
    )
    return {str(r["category"]): int(r["n"]) for r in rows}


def _sigma(rule: Rule[Any]) -> object:
    """The converted Sigma rule a shipped content rule runs (its ``loaded``); else the rule.

    Read by name: the content package imports this module, so it cannot be imported here.
    """
    return getattr(rule, "loaded", rule)


def rule_categories(rule: Rule[Any]) -> list[str]:
    """The Azure categories a rule reads: a Sigma rule's service's (a correlation's base rules'),
    else its log sets'."""
    sigma = _sigma(rule)
    if isinstance(sigma, SigmaDetection):
        return sorted(sigma.categories)
    if isinstance(sigma, SigmaCorrelation):
        return sorted({c for base in sigma.base_detections for c in base.categories})
    return sorted({c for s in rule.meta.log_sets for c in LOG_SET_CATEGORIES.get(s, ())})


def coverage(rules: Iterable[Rule[Any]], delivered: Mapping[str, int]) -> list[RuleCoverage]:
    """Each rule with its categories and their event counts (``delivered``: category -> events,
    any case)."""
    counts = {name.lower(): n for name, n in delivered.items()}
    out = []
    for rule in rules:
        names = rule_categories(rule)
        out.append(
            RuleCoverage(
                id=rule.meta.id,
                title=rule.meta.title,
                technique=rule.meta.technique,
                categories={c: counts.get(c.lower(), 0) for c in names},
                log_sets=tuple(sorted(str(s) for s in rule.meta.log_sets)),
                correlation=isinstance(_sigma(rule), SigmaCorrelation),
            )
        )
    return out


def matrix(covered: Sequence[RuleCoverage]) -> dict[str, Any]:
    """Tactics in matrix order, each with its techniques and their rules; unmapped apart."""
    tactics: dict[str, dict[str, list[RuleCoverage]]] = {t: {} for t in TACTICS}
    unmapped: list[RuleCoverage] = []
    for rule in covered:
        known = TECHNIQUES.get(rule.technique)
        if known is None:
            unmapped.append(rule)
            continue
        for tactic in known[1]:
            tactics[tactic].setdefault(rule.technique, []).append(rule)
    return {
        "rules": len(covered),
        "blind_rules": sum(1 for r in covered if r.blind),
        "tactics": [
            {
                "tactic": tactic,
                "techniques": [
                    {
                        "id": technique,
                        "name": TECHNIQUES[technique][0],
                        "rules": [r.to_json() for r in rules],
                    }
                    for technique, rules in sorted(techniques.items())
                ],
            }
            for tactic, techniques in tactics.items()
            if techniques
        ],
        "unmapped": [{"technique": r.technique, **r.to_json()} for r in unmapped],
    }


def navigator_layer(covered: Sequence[RuleCoverage]) -> dict[str, Any]:
    """An ATT&CK Navigator layer: a technique's score is its rules that can see data."""
    entries = []
    by_technique: dict[str, list[RuleCoverage]] = {}
    for rule in covered:
        if rule.technique in TECHNIQUES:
            by_technique.setdefault(rule.technique, []).append(rule)
    for technique, rules in sorted(by_technique.items()):
        seeing = [r for r in rules if not r.blind]
        blind = [r for r in rules if r.blind]
        comment = "rules: " + ", ".join(r.id for r in seeing) if seeing else "no rule sees data"
        if blind:
            comment += "; blind (no data in 24 h): " + ", ".join(r.id for r in blind)
        for tactic in TECHNIQUES[technique][1]:
            entries.append(
                {
                    "techniqueID": technique,
                    "tactic": TACTICS[tactic],
                    "score": len(seeing),
                    "comment": comment,
                    "enabled": True,
                    "showSubtechniques": "." in technique,
                }
            )
    top = max((sum(not r.blind for r in rules) for rules in by_technique.values()), default=1)
    return {
        "name": "hubsight detection coverage",
        "versions": {"attack": "16", "navigator": "5.1.0", "layer": "4.5"},
        "domain": "enterprise-attack",
        "description": "Enabled hubsight rules per technique; score = rules whose data arrived "
        "in the last 24 hours (0: every rule for it is blind).",
        "techniques": entries,
        "gradient": {
            "colors": ["#ff6666", "#ffe766", "#8ec843"],
            "minValue": 0,
            "maxValue": top or 1,
        },
        "legendItems": [
            {"label": "rules present, all blind", "color": "#ff6666"},
            {"label": "covered by rules that see data", "color": "#8ec843"},
        ],
    }
