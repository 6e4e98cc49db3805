"""The C allocator's settings for a long-running process (glibc's malloc; a no-op elsewhere).

glibc gives threads malloc arenas of their own, up to eight per core, and memory freed in an
arena stays with it for that arena's next allocations. ``hubsight run`` has ~170 threads
(ClickHouse's pools, librdkafka's, the API's), and the collectors' message buffers, parsed
batches and the Kafka client's queues are allocated and freed on several of them: with sixteen
arenas on two cores each one kept its own high-water mark, and resident memory grew for an
hour. Two arenas (``MALLOC_ARENA_MAX=2``) and handing free pages back to the system every
minute (``malloc_trim``) keep it near what is in use; README, "Memory", has the figures.

The embedded engine (chdb) allocates with a jemalloc of its own, which none of that touches
(``figures`` reads glibc's side only).
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)

# mallopt's parameter number for the arena limit (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
ARENA_ENV = "MALLOC_ARENA_MAX"
DEFAULT_ARENAS = 2


class _MallInfo2(ctypes.Structure):
    # struct mallinfo2 (malloc.h, glibc 2.33+): every field a size_t.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class MallocFigures:
    """What the C library's malloc holds, in bytes: in use (its heaps' allocated chunks and
    the blocks it mapped on their own) and free but kept (what ``trim`` may hand back)."""

    in_use: int
    free: int


def _glibc() -> ctypes.CDLL | None:
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):  # not glibc: musl, macOS, Windows
        return None
    if not version or not version.startswith("glibc"):
        return None
    # The running program's own symbols, glibc's among them: no library search (find_library
    # runs ldconfig), so it is cheap enough to call each minute.
    return ctypes.CDLL(None)


def limit_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; False where there is no glibc or the
    environment already chose (``MALLOC_ARENA_MAX``, which glibc read at start).

    Threads take an arena at their first allocation, so this is called before the store's
    and the broker client's threads start; arenas made before stay.
    """
    if arenas < 1:
        raise ValueError(f"arenas must be at least 1, not {arenas}")
    libc = _glibc()
    if libc is None or os.environ.get(ARENA_ENV):
        return False
    if not libc.mallopt(_M_ARENA_MAX, arenas):
        log.warning("the C library refused to cap malloc arenas at %d", arenas)
        return False
    return True


def trim() -> bool:
    """Give the system back the free pages of every malloc arena; False without glibc.

    Takes each arena's lock in turn for the time it walks its free lists (milliseconds for
    hundreds of MB), so it is called from a periodic check, not a hot path.
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def figures() -> MallocFigures | None:
    """The C library's malloc figures over every arena; None without glibc 2.33+ (mallinfo2).

    Python's small objects are not in it (pymalloc maps its own 1 MiB arenas), nor the
    embedded engine's memory (a jemalloc of its own): larger Python buffers, SQLite's pages and
    the Kafka client's queues are. Walks the free lists under each arena's lock, like ``trim``.
    """
    libc = _glibc()
    mallinfo2 = getattr(libc, "mallinfo2", None) if libc is not None else None
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return MallocFigures(in_use=info.uordblks + info.hblkhd, free=info.fordblks)
