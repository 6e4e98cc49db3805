"""Every LEQL example in docs/leql.md runs on the fixed data set and returns something."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hubsight.query.search import SearchRequest, search
from hubsight.store.embedded import EmbeddedStore

from .dataset import NOW, WINDOW

DOC = Path(__file__).parents[2] / "docs" / "leql.md"
EXAMPLES = re.findall(r"```leql\n(.*?)\n```", DOC.read_text("utf-8"), re.DOTALL)


def test_the_document_has_an_example_per_construct() -> None:
    text = " ".join(EXAMPLES)
    for construct in [
        "select(", "groupby(", "calculate(", "having(", "sort(", "limit(", "timeslice(",
        "CONTAINS-ANY", "ICONTAINS-ALL", "ISTARTS-WITH-ANY", " IIN ", "NOCASE(", "IP(", "/i",
        "(?P<", "(?<", "source_json.", "NOT ", " OR ", "'''", "pctl95", "percentile(95)", "bytes",
        "percentile(99.99:", ".0.", "source_user", "riskLevel", "limit(2)",
    ]:  # fmt: skip
        assert construct in text, construct


@pytest.mark.parametrize("query", EXAMPLES)
def test_documented_query_runs(store: EmbeddedStore, query: str) -> None:
    result = search(store, SearchRequest(query=query, start=WINDOW[0], end=WINDOW[1]), now=NOW)
    assert result.events or result.rows
