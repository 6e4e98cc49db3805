"""The parser registry the collector, ``parse`` and ``import`` use by default."""

from __future__ import annotations

from pathlib import Path

from hubsight.parsing.azure import build_registry
from hubsight.parsing.base import ParserRegistry
from hubsight.parsing.geoip import geoip_paths, open_geoip


def default_registry(
    data_dir: Path | None = None, geoip: str | Path | None = None
) -> ParserRegistry:
    """Every Azure parser hubsight ships, locating addresses with the configured GeoIP files.

    ``geoip`` (else ``$HUBSIGHT_GEOIP``, else ``<data_dir>/geoip``) names the MaxMind databases;
    without any, addresses are still classified but not located.
    """
    return build_registry(open_geoip(geoip_paths(geoip, data_dir)))
