"""Golden compiler tests: each LEQL query in ``golden/compile.golden`` with its exact SQL.

Regenerate after an intended change with ``HUBSIGHT_UPDATE_GOLDEN=1 pytest tests/query`` and
review the diff: it is the change in the SQL users' queries run.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hubsight.query.compiler import Compiled, Scope, compile_query
from hubsight.query.parser import parse

GOLDEN = Path(__file__).parent / "golden" / "compile.golden"
SCOPE = Scope(
    start=datetime(2026, 1, 1, tzinfo=UTC),
    end=datetime(2026, 1, 2, tzinfo=UTC),
    log_sets=("Ingress Authentication",),
)
_ENTRY = re.compile(r"^-- query: (.*)\n(.*)\n-- params: (.*)$", re.MULTILINE)


def _params(compiled: Compiled) -> str:
    return json.dumps(
        {
            name: [sql_type, value.isoformat() if isinstance(value, datetime) else value]
            for name, (sql_type, value) in compiled.params.items()
        },
        ensure_ascii=False,
    )


def _compile(query: str) -> Compiled:
    return compile_query(parse(query), SCOPE, limit=100)


def _entries() -> list[tuple[str, str, str]]:
    return [
        (m.group(1), m.group(2), m.group(3)) for m in _ENTRY.finditer(GOLDEN.read_text("utf-8"))
    ]


def _render(queries: list[str]) -> str:
    blocks = []
    for query in queries:
        compiled = _compile(query)
        blocks.append(f"-- query: {query}\n{compiled.sql}\n-- params: {_params(compiled)}\n")
    return "\n".join(blocks)


if os.environ.get("HUBSIGHT_UPDATE_GOLDEN"):
    GOLDEN.write_text(_render([q for q, _, _ in _entries()]), "utf-8")

ENTRIES = _entries()


def test_the_golden_file_has_at_least_150_distinct_queries() -> None:
    assert len({query for query, _, _ in ENTRIES}) >= 150


@pytest.mark.parametrize(("query", "sql", "params"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_query_compiles_to_its_golden_sql(query: str, sql: str, params: str) -> None:
    compiled = _compile(query)
    assert compiled.sql == sql
    assert _params(compiled) == params


@pytest.mark.parametrize(("query", "sql", "params"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_no_query_text_reaches_the_sql(query: str, sql: str, params: str) -> None:
    # Every quoted value and key segment of the query is a parameter, never SQL text.
    values = re.findall(r"\"([^\"]{3,})\"|'([^']{3,})'", query)
    for value in (a or b for a, b in values):
        assert value not in sql
