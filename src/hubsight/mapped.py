"""Pages of a shared library that the process mapped and no longer uses (Linux; a no-op elsewhere).

The embedded engine's library (chdb's ``_chdb.abi3.so``, ~530 MB) is mapped from its file,
and every page the process touched counts in its resident memory until the kernel needs the
memory back: ~290 MB are touched while the engine starts (registering every function, format
and setting it knows) and never again, ~380 MB after the first merges and searches.
``release`` unmaps the clean pages of such a library (``madvise(MADV_DONTNEED)``): they stay
in the OS page cache, and a page used again is mapped again from there on its next use (a
minor fault, no disk read while the cache holds it). Resident memory then counts what the
engine used since, and the rest is ordinary page cache, which the kernel takes back first.

Only mappings without private copies are released: a mapping that holds pages the process
wrote (its data, the relocated ``.data.rel.ro``) is left whole, since dropping those would
bring back the file's bytes in their place.
"""

from __future__ import annotations

import ctypes
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# The embedded engine's library: chdb's extension module.
ENGINE_LIBRARY = "/chdb/_chdb."
_MADV_DONTNEED = 4
_SMAPS = Path("/proc/self/smaps")
# A mapping's header line in smaps: "start-end perms offset dev inode   path".
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")


@dataclass(slots=True)
class _Mapping:
    start: int
    end: int
    perms: str
    path: str
    rss_kb: int = 0
    anonymous_kb: int = -1


def _mappings(text: str) -> list[_Mapping]:
    mappings: list[_Mapping] = []
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            mappings.append(_Mapping(int(header[1], 16), int(header[2], 16), header[3], header[4]))
        elif mappings and line.startswith(("Rss:", "Anonymous:")):
            key, value = line.split()[:2]
            if key == "Rss:":
                mappings[-1].rss_kb = int(value)
            else:
                mappings[-1].anonymous_kb = int(value)
    return mappings


def releasable(text: str, library: str) -> list[tuple[int, int, int]]:
    """(start, length, resident bytes) of each mapping of ``library`` in smaps ``text`` whose
    pages are all the file's: read-only and without one private (anonymous) page."""
    return [
        (m.start, m.end - m.start, m.rss_kb * 1024)
        for m in _mappings(text)
        if library in m.path and "w" not in m.perms and m.anonymous_kb == 0
    ]


def release(library: str = ENGINE_LIBRARY, smaps: Path = _SMAPS) -> int | None:
    """Unmap the resident clean pages of ``library``'s mappings (as the process's ``smaps``
    lists them); the bytes released, or None where there is no smaps (not Linux)."""
    if not sys.platform.startswith("linux") or not smaps.exists():
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    released = 0
    for start, length, resident in releasable(smaps.read_text(), library):
        if libc.madvise(start, length, _MADV_DONTNEED) != 0:
            log.warning(
                "the pages of %s could not be released (errno %d)", library, ctypes.get_errno()
            )
            continue
        released += resident
    return released
