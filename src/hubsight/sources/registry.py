"""Which transport serves which source profile: one line per profile kind.

A profile (``sources.config.Profile``) says where and how to connect; its driver opens the
reader and explains failures. Adding a transport is a profile class, a driver module and a line
here; ``tests/sources/test_registry.py`` checks that every profile kind has its driver.
"""

from __future__ import annotations

from hubsight.errors import ConfigError
from hubsight.sources.base import SourceDriver
from hubsight.sources.config import SourceConfig
from hubsight.sources.kafka import KafkaDriver

_KAFKA = KafkaDriver()

DRIVERS: dict[str, SourceDriver] = {
    "eventhubs": _KAFKA,
    "kafka": _KAFKA,
}


def driver_for(config: SourceConfig) -> SourceDriver:
    """The driver of ``config``'s profile kind."""
    try:
        return DRIVERS[config.profile.kind]
    except KeyError:
        raise ConfigError(
            f"no transport reads source profiles of kind {config.profile.kind!r}",
            hint=f"the kinds are {', '.join(sorted(DRIVERS))}",
        ) from None
