"""The C allocator's settings: the arena cap reaches glibc, the environment's choice stands."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from hubsight import allocator

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# Six threads alive at once, each making a malloc'd allocation (over pymalloc's 512 bytes):
# glibc gives each new thread an arena of its own up to its cap, and malloc_stats() prints one
# "Arena N:" block per arena to stderr.
_ARENAS = """
import ctypes, sys, threading
from hubsight import allocator
if sys.argv[1] == "limit":
    assert allocator.limit_arenas(2)
held, barrier = [], threading.Barrier(6)
def work():
    held.append(bytearray(100_000))
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def _arenas(mode: str) -> int:
    env = {key: value for key, value in os.environ.items() if key != allocator.ARENA_ENV}
    done = subprocess.run(
        [sys.executable, "-c", _ARENAS, mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_the_cap_bounds_the_arenas_threads_take() -> None:
    # Uncapped, the six threads take arenas of their own beside the main one's.
    assert _arenas("free") >= 4
    assert _arenas("limit") == 2


def test_the_environments_choice_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.ARENA_ENV, "4")
    assert not allocator.limit_arenas()


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        allocator.limit_arenas(0)


def test_trim_hands_free_pages_back() -> None:
    assert allocator.trim()


def test_without_glibc_both_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def musl(_name: str) -> str:
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(os, "confstr", musl)
    monkeypatch.delenv(allocator.ARENA_ENV, raising=False)
    assert not allocator.limit_arenas()
    assert not allocator.trim()
