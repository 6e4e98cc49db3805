"""The Azure parsers and the explicit registry that maps each Azure category to one of them.

Adding a category is one module (a class with ``categories`` and ``parse``) and one line in
``_PARSER_TYPES``. Records without an Azure Monitor category are recognised by shape: Defender
continuous-export alerts and posture objects, Graph-shaped sign-ins and audit entries (whose
``category`` is the audit category, e.g. ``UserManagement`` or ``Policy``, not a log category).
A category no parser claims but which follows the common resource-log schema goes to
``ResourceLogParser``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from hubsight.parsing.azure.activity import ActivityParser
from hubsight.parsing.azure.audit import AuditParser, is_graph_audit
from hubsight.parsing.azure.defender import DefenderParser, is_security_alert
from hubsight.parsing.azure.deps import KnownUsers, ParserDeps
from hubsight.parsing.azure.firewall import FirewallParser
from hubsight.parsing.azure.graph import GraphActivityParser
from hubsight.parsing.azure.keyvault import KeyVaultParser
from hubsight.parsing.azure.kubernetes import KubernetesAuditParser
from hubsight.parsing.azure.posture import DefenderPostureParser, is_posture_export
from hubsight.parsing.azure.provisioning import ProvisioningParser
from hubsight.parsing.azure.resourcelog import ResourceLogParser, is_resource_log
from hubsight.parsing.azure.risk import RiskParser
from hubsight.parsing.azure.signin import SignInParser, is_graph_signin
from hubsight.parsing.azure.sql import SqlAuditParser
from hubsight.parsing.azure.storage import StorageParser
from hubsight.parsing.base import RecordParser
from hubsight.parsing.geoip import GeoIP


class AzureParser(RecordParser, Protocol):
    """A parser module's class: the categories it claims, built with the shared ``ParserDeps``."""

    @property
    def categories(self) -> tuple[str, ...]:
        """The Azure categories this parser claims."""
        ...


_PARSER_TYPES: tuple[Callable[[ParserDeps], AzureParser], ...] = (
    SignInParser,
    AuditParser,
    ActivityParser,
    DefenderParser,
    ProvisioningParser,
    RiskParser,
    GraphActivityParser,
    KeyVaultParser,
    StorageParser,
    KubernetesAuditParser,
    FirewallParser,
    SqlAuditParser,
    DefenderPostureParser,
    ResourceLogParser,
)
# Activity Log categories that are also Graph audit categories: checked for the Graph shape first.
_AMBIGUOUS = frozenset({"policy"})


class DuplicateCategoryError(ValueError):
    """Two parsers claim the same Azure category."""


@dataclass(frozen=True, slots=True)
class AzureRegistry:
    """Finds the parser for an Azure record by category (any case), else by shape."""

    by_category: Mapping[str, AzureParser]
    audit: AzureParser
    defender: AzureParser
    signin: AzureParser
    posture: AzureParser
    resource_log: AzureParser
    claimed: tuple[str, ...] = field(default=())

    def parser_for(self, category: str | None, record: bytes) -> AzureParser | None:
        """Return the parser claiming this record, or None."""
        key = category.lower() if category else ""
        parser = self.by_category.get(key)
        if parser is not None and key not in _AMBIGUOUS:
            return parser
        if is_security_alert(record):
            return self.defender
        if is_graph_audit(record):
            return self.audit
        if parser is None and not key and is_graph_signin(record):
            return self.signin
        if parser is None and not key and is_posture_export(record):
            return self.posture
        if parser is None and key and is_resource_log(record):
            return self.resource_log
        return parser


def build_registry(geoip: GeoIP | None = None) -> AzureRegistry:
    """The registry of every Azure parser, sharing one ``GeoIP`` (none: addresses not located)."""
    deps = ParserDeps(geoip=geoip if geoip is not None else GeoIP(), users=KnownUsers())
    by_category: dict[str, AzureParser] = {}
    claimed: list[str] = []
    parsers = [make(deps) for make in _PARSER_TYPES]
    for parser in parsers:
        for category in parser.categories:
            key = category.lower()
            if key in by_category:
                raise DuplicateCategoryError(
                    f"category {category!r} is claimed by both {type(by_category[key]).__name__} "
                    f"and {type(parser).__name__}"
                )
            by_category[key] = parser
            claimed.append(category)
    return AzureRegistry(
        by_category=MappingProxyType(by_category),
        audit=next(p for p in parsers if isinstance(p, AuditParser)),
        defender=next(p for p in parsers if isinstance(p, DefenderParser)),
        signin=next(p for p in parsers if isinstance(p, SignInParser)),
        posture=next(p for p in parsers if isinstance(p, DefenderPostureParser)),
        resource_log=next(p for p in parsers if isinstance(p, ResourceLogParser)),
        claimed=tuple(claimed),
    )
