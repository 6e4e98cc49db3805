"""Every sample record in tests/data/azure parses into the events its expected file describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.parsing.samples import DATA, expected_of, parse_bytes, sample_files

SAMPLES = sample_files()


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sample_parses_to_expected_fields(path: Path) -> None:
    events = parse_bytes(path.read_bytes())
    expected = expected_of(path)
    assert len(events) == len(expected)
    for event, wanted in zip(events, expected, strict=True):
        got = {key: event.get(key) for key in wanted}
        assert got == wanted


def test_every_sample_has_an_expected_file() -> None:
    missing = [p for p in SAMPLES if not p.with_name(p.stem + ".expected.json").exists()]
    assert missing == []
    assert len(SAMPLES) >= 40
    assert DATA.is_dir()
