"""The composition root of the event store: settings in, an ``EventStore`` out.

Everything that needs events calls ``open_store``; only this module names a concrete store.
Adding a backend is a module implementing ``store.base.EventStore`` and one line in
``_BACKENDS`` (keyed by the URL scheme of ``StoreSettings.url``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hubsight.errors import ConfigError
from hubsight.store.base import EventStore

_T = TypeVar("_T")
STORE_ENV = "HUBSIGHT_STORE"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    """Where events live: ``url`` names a store server; without one, the embedded store."""

    data_dir: Path
    # May carry a password: never printed.
    url: str | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, data_dir: Path, url: str | None = None) -> StoreSettings:
        """``url`` (``--store``) over ``HUBSIGHT_STORE`` over the embedded store."""
        return cls(data_dir=data_dir, url=url or os.environ.get(STORE_ENV) or None)

    @property
    def scheme(self) -> str:
        """The backend's name: the URL's scheme, or ``embedded``."""
        return self.url.split("://", 1)[0].lower() if self.url else "embedded"


def _embedded(settings: StoreSettings) -> EventStore:
    from hubsight.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.data_dir)


def _server(settings: StoreSettings) -> EventStore:
    from hubsight.store.server import open_server

    return open_server(settings.url or "", settings.data_dir)


# Imported when chosen: each backend pulls in its own client library.
_BACKENDS: dict[str, Callable[[StoreSettings], EventStore]] = {
    "embedded": _embedded,
    "clickhouse": _server,
    "clickhouses": _server,
}


def _restore_embedded(settings: StoreSettings, source: Path) -> None:
    from hubsight.store.embedded import restore_embedded

    restore_embedded(settings.data_dir, source)


_RESTORERS: dict[str, Callable[[StoreSettings, Path], None]] = {
    "embedded": _restore_embedded,
}


def open_store(settings: StoreSettings) -> EventStore:
    """Open (and migrate) the store ``settings`` name."""
    return _chosen(_BACKENDS, settings)(settings)


def restore_store(settings: StoreSettings, source: Path) -> None:
    """Bring the copy ``EventStore.backup`` wrote in ``source`` back into an empty store."""
    _chosen(_RESTORERS, settings)(settings, source)


def _chosen(table: dict[str, _T], settings: StoreSettings) -> _T:
    chosen = table.get(settings.scheme)
    if chosen is None:
        raise ConfigError(
            f"no event store backend for {settings.scheme!r}",
            hint=f"the store URL's scheme is one of {', '.join(sorted(table))}",
        )
    return chosen
