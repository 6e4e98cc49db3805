"""The Azure parsers and the explicit registry that maps each Azure category to one of them.

Adding a category is one module (a class with ``categories`` and ``parse``) and one line in
``_PARSER_TYPES``. Records without an Azure Monitor category are recognised by shape: Defender
continuous-export alerts and Graph-shaped audit entries (whose ``category`` is the audit
category, e.g. ``UserManagement`` or ``Policy``, not a log category).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from hubsight.parsing.azure.activity import ActivityParser
from hubsight.parsing.azure.audit import AuditParser, is_graph_audit
from hubsight.parsing.azure.defender import DefenderParser, is_security_alert
from hubsight.parsing.azure.provisioning import ProvisioningParser
from hubsight.parsing.azure.risk import RiskParser
from hubsight.parsing.azure.signin import SignInParser
from hubsight.parsing.base import RecordParser
from hubsight.parsing.geoip import GeoIP


class AzureParser(RecordParser, Protocol):
    """A parser module's class: the categories it claims, built with the shared ``GeoIP``."""

    @property
    def categories(self) -> tuple[str, ...]:
        """The Azure categories this parser claims."""
        ...


_PARSER_TYPES: tuple[Callable[[GeoIP], AzureParser], ...] = (
    SignInParser,
    AuditParser,
    ActivityParser,
    DefenderParser,
    ProvisioningParser,
    RiskParser,
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
        return parser


def build_registry(geoip: GeoIP | None = None) -> AzureRegistry:
    """The registry of every Azure parser, sharing one ``GeoIP`` (none: addresses not located)."""
    geo = geoip if geoip is not None else GeoIP()
    by_category: dict[str, AzureParser] = {}
    claimed: list[str] = []
    parsers = [make(geo) for make in _PARSER_TYPES]
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
    audit = next(p for p in parsers if isinstance(p, AuditParser))
    defender = next(p for p in parsers if isinstance(p, DefenderParser))
    return AzureRegistry(
        by_category=MappingProxyType(by_category),
        audit=audit,
        defender=defender,
        claimed=tuple(claimed),
    )
