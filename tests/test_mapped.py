"""Released library pages: only the library's clean mappings, and the engine works on after."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from hubsight import mapped
from hubsight.store.backends import StoreSettings, open_store

LIBRARY = "/venv/site-packages/chdb/_chdb.abi3.so"
# Four mappings of the library (code, read-only data, the relocated data.rel.ro that holds
# private copies, its writable data) and one of another file.
SMAPS = f"""\
7f0000000000-7f0000400000 r-xp 00000000 08:01 42   {LIBRARY}
Size:               4096 kB
Rss:                3000 kB
Anonymous:             0 kB
7f0000400000-7f0000600000 r--p 00400000 08:01 42   {LIBRARY}
Size:               2048 kB
Rss:                1024 kB
Anonymous:             0 kB
7f0000600000-7f0000700000 r--p 00600000 08:01 42   {LIBRARY}
Size:               1024 kB
Rss:                1024 kB
Anonymous:             4 kB
7f0000700000-7f0000800000 rw-p 00700000 08:01 42   {LIBRARY}
Size:               1024 kB
Rss:                 512 kB
Anonymous:             0 kB
7f0000800000-7f0000900000 r-xp 00000000 08:01 43   /usr/lib/libother.so
Size:               1024 kB
Rss:                1024 kB
Anonymous:             0 kB
"""

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's smaps only")


def test_only_the_librarys_read_only_mappings_without_private_pages_are_released() -> None:
    assert mapped.releasable(SMAPS, "/chdb/_chdb.") == [
        (0x7F0000000000, 0x400000, 3000 * 1024),
        (0x7F0000400000, 0x200000, 1024 * 1024),
    ]
    assert mapped.releasable(SMAPS, "/libnothere.so") == []


def _file_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@linux
def test_the_engines_pages_leave_resident_memory_and_come_back_when_used(
    tmp_path: Path,
) -> None:
    store = open_store(StoreSettings(data_dir=tmp_path))
    try:
        before = _file_kb()
        released = mapped.release()
        assert released is not None
        # Opening the store touched tens of MB of the engine's code at least.
        assert released > 10 * 1024**2
        assert _file_kb() <= before - released // 1024 // 2
        # Its code maps back on use: the engine answers as before.
        assert store.select("SELECT count() AS n FROM events") == [{"n": 0}]
        again = mapped.release()
        assert again is not None
        assert 0 < again < released
    finally:
        store.close()


@linux
def test_a_refused_release_is_logged_and_counts_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An address off a page boundary, below any the process may map: the kernel refuses it
    # (EINVAL) and touches nothing.
    smaps = tmp_path / "smaps"
    smaps.write_text(
        f"1001-3001 r-xp 00000000 08:01 42   {LIBRARY}\nRss:   8 kB\nAnonymous:   0 kB\n"
    )
    with caplog.at_level(logging.WARNING):
        assert mapped.release("/chdb/_chdb.", smaps) == 0
    assert "could not be released (errno 22)" in caplog.text


def test_without_smaps_nothing_is_released(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mapped.release(smaps=tmp_path / "absent") is None
    monkeypatch.setattr(sys, "platform", "darwin")
    assert mapped.release() is None
