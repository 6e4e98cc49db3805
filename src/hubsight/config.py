"""Where hubsight keeps its data, from the flag, the environment or the default."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "HUBSIGHT_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")


def resolve_data_dir(flag: str | Path | None) -> Path:
    """The data directory: ``--data-dir`` over ``HUBSIGHT_DATA_DIR`` over ``./data``."""
    if flag:
        return Path(flag)
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else DEFAULT_DATA_DIR
