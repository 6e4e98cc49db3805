"""Rule families: which part of Azure a rule watches, for listing rules by family.

Shipped Sigma content names its family by its folder (``detect/content/<family>/``); built-in
rules are placed here by id; rules a user imported are their own family.
"""

from __future__ import annotations

from hubsight.detect.attack import TACTICS, TECHNIQUES
from hubsight.detect.base import RuleMeta

# Family key -> title, in the order rules are listed.
FAMILIES: dict[str, str] = {
    "entra": "Entra ID",
    "keyvault": "Key Vault",
    "storage": "Storage",
    "compute": "Compute",
    "aks": "Kubernetes (AKS)",
    "network": "Network",
    "monitoring": "Logging and monitoring tampering",
    "automation": "Automation and serverless",
    "governance": "Governance",
    "defender": "Defender for Cloud",
    "sql": "SQL and databases",
    "graph": "Graph activity and resource data planes",
    "vendor": "Vendor alerts",
    "platform": "Collection health",
    "imported": "Imported Sigma rules",
    "custom": "Custom alerts",
}

# Built-in rules by id prefix, and the Azure Resource Manager ones one by one.
_BY_PREFIX = {
    "auth": "entra",
    "admin": "entra",
    "thirdparty": "vendor",
    "platform": "platform",
    "sigma": "imported",
    "custom": "custom",
}
_AZURE = {
    "azure.rbac_owner_assigned": "governance",
    "azure.log_tampering": "monitoring",
    "azure.keyvault_purge": "keyvault",
    "azure.access_keys_listed": "storage",
    "azure.vm_run_command": "compute",
    "azure.resource_group_deleted": "governance",
    "azure.deletion_burst": "governance",
}


def family_of(meta: RuleMeta) -> str:
    """The family key of a rule."""
    return meta.family or _AZURE.get(meta.id) or _BY_PREFIX.get(meta.id.partition(".")[0], "")


def family_title(key: str) -> str:
    """The title of a family key (the key itself when unknown)."""
    return FAMILIES.get(key, key)


def tactics_of(meta: RuleMeta) -> tuple[str, ...]:
    """The rule's ATT&CK tactics: its own tags, else those of its technique (built-in rules)."""
    if meta.tactics:
        return meta.tactics
    known = TECHNIQUES.get(meta.technique)
    return tuple(TACTICS[tactic] for tactic in known[1]) if known else ()
