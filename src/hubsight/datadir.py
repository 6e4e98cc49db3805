"""The data directory is its owner's alone: directories 0700, files 0600.

It holds password hashes, the key that decrypts stored secrets, alerts and every event. Every
hubsight process runs with umask 077, so what it creates is closed from the start;
``hubsight run`` also tightens what an earlier release or another tool left open, and logs it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
DIR_MODE = 0o700
FILE_MODE = 0o600


def close_new_files() -> None:
    """Files and directories this process creates are readable by its user only."""
    os.umask(0o077)


def close_data_dir(data_dir: Path) -> int:
    """Create ``data_dir`` 0700 and tighten everything in it; how many paths were tightened."""
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tightened = 0
    for root, dirs, files in os.walk(data_dir):
        for path, mode in [(Path(root), DIR_MODE)] + [(Path(root) / f, FILE_MODE) for f in files]:
            try:
                info = path.lstat()
                # A symlink is not followed: its target may be anything, anywhere.
                if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) & ~mode == 0:
                    continue
                path.chmod(stat.S_IMODE(info.st_mode) & mode)
            except FileNotFoundError:
                # Gone since it was listed: SQLite drops its -shm/-wal when another process's
                # last connection closes, ClickHouse its temporary parts. Nothing left to close.
                continue
            tightened += 1
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
    if tightened:
        log.warning(
            "closed %d paths in %s to their owner (directories 0700, files 0600)",
            tightened,
            data_dir,
        )
    return tightened
