"""Options of the ``hubsight`` group that commands read: where the event store is."""

from __future__ import annotations

from pathlib import Path

import click

from hubsight.store.backends import StoreSettings

STORE_META = "hubsight.store"


def store_settings(data_dir: Path) -> StoreSettings:
    """The event store of this invocation: ``--store`` over ``HUBSIGHT_STORE`` over embedded."""
    ctx = click.get_current_context(silent=True)
    flag = ctx.find_root().meta.get(STORE_META) if ctx is not None else None
    return StoreSettings.resolve(data_dir, flag)
