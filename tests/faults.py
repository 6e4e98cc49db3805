"""Faults injected on purpose: a disk that fills up (a small tmpfs; mounting needs root)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

import pytest


class SmallDisk:
    """A tmpfs of a few megabytes at ``path``, that a test fills and then grows."""

    def __init__(self, path: Path, megabytes: int) -> None:
        self.path = path
        self.megabytes = megabytes

    def __enter__(self) -> SmallDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.megabytes}m", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"a small disk needs a tmpfs mount (root): {done.stderr.strip()}")
        return self

    def resize(self, megabytes: int) -> None:
        """Grow (or shrink) the disk in place, as an operator freeing space would."""
        subprocess.run(
            ["mount", "-o", f"remount,size={megabytes}m", str(self.path)],
            check=True,
            capture_output=True,
        )
        self.megabytes = megabytes

    def read_only(self) -> None:
        """Make the disk read-only in place, as a failing disk remounted by the kernel is."""
        subprocess.run(
            ["mount", "-o", "remount,ro", str(self.path)], check=True, capture_output=True
        )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Lazy: a store still closing must not leave the mount behind.
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
