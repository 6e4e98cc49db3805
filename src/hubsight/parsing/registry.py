"""The parser registry the collector, ``parse`` and ``import`` use by default."""

from __future__ import annotations

from hubsight.parsing.base import ParserRegistry
from hubsight.parsing.pipeline import EmptyRegistry


def default_registry() -> ParserRegistry:
    """Every Azure parser hubsight ships."""
    return EmptyRegistry()
