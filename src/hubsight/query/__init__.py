"""Log Search: LEQL over the event store.

``leql.lark`` is the grammar; ``parser`` turns text into the ``ast`` (with positioned errors);
``compiler`` (with ``keys`` and ``predicates``) turns the AST into one parameterized ClickHouse
statement; ``timerange`` resolves the search window; ``search`` runs a request and shapes its
result, with ``context``, ``export`` and ``saved`` built on it.
"""

from hubsight.query.compiler import Scope, compile_query
from hubsight.query.parser import parse
from hubsight.query.search import SearchLimits, SearchRequest, SearchResult, search

__all__ = [
    "Scope",
    "SearchLimits",
    "SearchRequest",
    "SearchResult",
    "compile_query",
    "parse",
    "search",
]
