"""Source status for ``hubsight status`` and the API, whether or not ``hubsight run`` is running.

The running service writes each source's health to the catalog every second, and the event
store's damaged parts when it starts; ``status`` reads them from there, so it needs neither the
event store (held by the service) nor its API. When nothing runs, the event counts and damaged
parts come from the store itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubsight.errors import StoreError
from hubsight.health import SourceHealth, State
from hubsight.store.backends import StoreSettings
from hubsight.store.catalog import Catalog
from hubsight.store.damage import damaged_parts

if TYPE_CHECKING:
    from hubsight.service import Service


def source_status(service: Service, name: str) -> dict[str, Any]:
    """Live health of one source of a running service."""
    health = service.health.get(name) or SourceHealth(name)
    return health.snapshot()


def offline_status(
    data_dir: Path, *, running: bool, store: StoreSettings | None = None
) -> dict[str, Any]:
    """Health of every source from the catalog, and the event store's damaged parts; with
    nothing running, counts and damaged parts come from the store itself."""
    catalog = Catalog(data_dir)
    persisted = catalog.load_health()
    counts: dict[str, int] | None = {}
    store_error: dict[str, str] | None = None
    if running:
        damaged = catalog.load_damaged_parts()
    else:
        try:
            counts, damaged = _from_store(store or StoreSettings.resolve(data_dir))
        except StoreError as exc:
            # A wrong --store or an unreachable server looked like a store with no counts.
            counts, damaged = None, []
            store_error = {"error": exc.message, "hint": exc.hint}
    sources = []
    for config in catalog.all():
        snapshot, _written = persisted.get(config.name, (SourceHealth(config.name).snapshot(), 0))
        if not config.enabled:
            snapshot["state"] = State.DISABLED.value
        elif not running:
            snapshot["state"] = State.STOPPED.value
            snapshot["events_per_minute"] = 0
            # Nothing detects while nothing runs: the next start catches up.
            snapshot["detection"] = None
        if not running and counts is not None:
            snapshot["events_stored"] = counts.get(config.name, 0)
        sources.append(snapshot)
    return {"sources": sources, "damaged_parts": damaged, "store_error": store_error}


def _from_store(settings: StoreSettings) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Events stored per log name and damaged parts; StoreError when the store cannot be
    opened."""
    from hubsight.store.backends import open_store

    # An embedded store that was never created holds nothing: do not create one to say so.
    if settings.scheme == "embedded" and not (settings.data_dir / "clickhouse").exists():
        return {}, []
    store = open_store(settings)
    try:
        rows = store.select("SELECT log_name, count() AS n FROM events GROUP BY log_name")
        damaged = [part.as_json() for part in damaged_parts(store)]
    finally:
        store.close()
    return {row["log_name"]: int(row["n"]) for row in rows}, damaged
