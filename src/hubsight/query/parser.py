"""Text to AST: the lark grammar in ``leql.lark`` plus checks that give positioned errors."""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from functools import cache
from importlib import resources

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from hubsight.errors import QuerySyntaxError
from hubsight.query import ast

OPERATORS = (
    "=", "!=", ">", ">=", "<", "<=",
    "CONTAINS", "ICONTAINS", "STARTS-WITH", "ISTARTS-WITH",
    "CONTAINS-ANY", "ICONTAINS-ANY", "CONTAINS-ALL", "ICONTAINS-ALL",
    "STARTS-WITH-ANY", "ISTARTS-WITH-ANY", "IN", "IIN",
)  # fmt: skip
CLAUSES = ("select", "where", "groupby", "calculate", "having", "sort", "limit", "timeslice")
CALC_NAMES = {
    "count": "count",
    "unique": "unique",
    "sum": "sum",
    "average": "average",
    "avg": "average",
    "min": "min",
    "max": "max",
    "median": "median",
    "percentile": "percentile",
    "standarddeviation": "stddev",
    "bytes": "bytes",
}
MAX_GROUPBY_KEYS = 5
MAX_BUCKETS = 200
_WIDTH = re.compile(r"(\d+)([smhd])", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_WIDTH_MS = 100 * 366 * _UNIT_MS["d"]
_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<([A-Za-z_][A-Za-z0-9_]*)>")
_PCTL = re.compile(r"pctl(\d+(?:\.\d+)?)", re.IGNORECASE)
_TOKEN_NAMES = {
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "RSQB": "']'",
    "LSQB": "'['",
    "COLON": "':'",
    "WORD": "a word",
    "CMP": "a comparison",
    "WORDOP": "an operator",
    "$END": "the end of the query",
    # The grammar's names of its other tokens mean nothing to the person writing the query.
    "DQ": "a quoted value",
    "SQ": "a quoted value",
    "TRIPLE_DQ": "a quoted value",
    "TRIPLE_SQ": "a quoted value",
    "REGEX": "a /regex/",
    "NOCASE": "NOCASE(...)",
    "IP": "IP(...)",
    "NOT": "NOT",
    "NEGATE": "NOT",
    "AND": "AND",
    "OR": "OR",
    "AS": "AS",
}
_CLAUSE_ORDER = (
    "write select() first, then where() or the search terms, then groupby(), calculate(), "
    "having(), sort(), limit() or timeslice() in any order"
)


@cache
def _parser() -> Lark:
    grammar = resources.files("hubsight.query").joinpath("leql.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=False)


def parse(text: str) -> ast.Query:
    """Parse LEQL into a ``Query``; raises ``QuerySyntaxError`` with the position of a problem."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    return _Builder(text).query(tree)


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The choice nearest to ``word`` (case-insensitive), if one is close enough."""
    lowered = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def _syntax_error(text: str, exc: UnexpectedInput) -> QuerySyntaxError:
    line, column = max(exc.line, 1), max(exc.column, 1)
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or (isinstance(token, Token) and token.type == "$END"):
        line, column = _end_position(text)
        return QuerySyntaxError(
            "the query ends too early",
            query=text,
            line=line,
            column=column,
            hint="close every '(', '[' and quote, and give each operator a value",
        )
    expected = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    offset = exc.pos_in_stream if exc.pos_in_stream is not None else 0
    found = _word_at(text, offset)
    if isinstance(exc, UnexpectedCharacters) and text[offset : offset + 1] in "\"'":
        return QuerySyntaxError(
            "unterminated quoted value", query=text, line=line, column=column,
            hint="end the value with the same quote it starts with",
        )  # fmt: skip
    if found.upper() in {"AND", "OR", "NOT"}:
        return QuerySyntaxError(
            f"unexpected '{found}'", query=text, line=line, column=column,
            hint=f"write the boolean operator in upper case: {found.upper()}",
        )  # fmt: skip
    clause = _clause_at(text, offset)
    if clause and clause[0].lower() in CLAUSES:
        word, at = clause
        # A clause the grammar knows, in a place it does not take one: twice, or out of order.
        twice = re.search(rf"(?i)\b{word}\s*\(", text[:at])
        return QuerySyntaxError(
            f"{word.lower()}() appears twice" if twice else f"{word.lower()}() comes too late",
            query=text, line=line, column=column - (offset - at),
            hint="keep one of them" if twice else _CLAUSE_ORDER,
        )  # fmt: skip
    if clause:
        word, at = clause
        near = suggest(word, CLAUSES)
        if near:
            return QuerySyntaxError(
                f"unknown clause '{word}'", query=text, line=line, column=column - (offset - at),
                hint=f"did you mean {near}()?",
            )  # fmt: skip
    if "WORDOP" in expected and found:
        near = suggest(found, OPERATORS)
        if near:
            return QuerySyntaxError(
                f"'{found}' is not an operator", query=text, line=line, column=column,
                hint=f"did you mean {near}?",
            )  # fmt: skip
        return QuerySyntaxError(
            f"unexpected '{found}'", query=text, line=line, column=column,
            hint="join search terms with AND or OR, or compare a key with an operator "
            "(=, !=, CONTAINS, IN, ...)",
        )  # fmt: skip
    wanted = sorted({_TOKEN_NAMES.get(name, name.lower()) for name in expected})
    shown = found or text[offset : offset + 1]
    hint = "expected " + " or ".join(wanted) if wanted else ""
    if "AND" in expected and not {"WORDOP", "CMP"} & expected:
        hint = "join search terms with AND or OR" + (f" ({hint})" if hint else "")
    return QuerySyntaxError(
        f"unexpected '{shown}'", query=text, line=line, column=column, hint=hint
    )


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _word_at(text: str, offset: int) -> str:
    match = re.compile(r"[^\s()\[\],=!<>\"']+").match(text, offset)
    return match.group(0) if match else ""


def _clause_at(text: str, offset: int) -> tuple[str, int] | None:
    """A word followed by '(' at or just before ``offset``: a clause name, maybe misspelt."""
    before = re.search(r"([A-Za-z_]+)\s*$", text[:offset])
    if text[offset : offset + 1] == "(" and before:
        return before.group(1), before.start(1)
    after = re.compile(r"([A-Za-z_]+)\s*\(").match(text, offset)
    return (after.group(1), offset) if after else None


def _pos(token: Token) -> ast.Pos:
    return ast.Pos(token.line or 1, token.column or 1)


def unquote(token: Token) -> str:
    """The text of a string token without its quotes, escapes resolved."""
    raw = str(token)
    if token.type in {"TRIPLE_DQ", "TRIPLE_SQ"}:
        return raw[3:-3]
    return re.sub(r"\\(.)", r"\1", raw[1:-1], flags=re.DOTALL)


def leql_string(text: str) -> str:
    """``text`` as a LEQL string literal (``unquote`` reads it back): how values enter queries.

    Only the quote and the backslash are escaped; LEQL reads every other character as itself.
    """
    return '"' + re.sub(r'(["\\])', r"\\\1", text) + '"'


class _Builder:
    """Walks lark's tree into ``ast`` nodes, checking what the grammar cannot."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, message: str, pos: ast.Pos, hint: str = "") -> QuerySyntaxError:
        return QuerySyntaxError(
            message, query=self.text, line=pos.line, column=pos.column, hint=hint
        )

    def query(self, tree: Tree[Token]) -> ast.Query:
        query = ast.Query(text=self.text)
        seen: set[str] = set()
        for child in tree.children:
            child = _node(child)
            name = child.data if isinstance(child, Tree) else "where"
            name = name if name in CLAUSES else "where"
            if name in seen:
                first = self._first_token(child)
                raise self.fail(f"{name}() appears twice", _pos(first), "keep one of them")
            seen.add(name)
            query = self.apply(query, name, child)
        return query

    def _first_token(self, node: Tree[Token] | Token) -> Token:
        if isinstance(node, Token):
            return node
        for child in node.children:
            if isinstance(child, Tree | Token):
                return self._first_token(child)
        raise AssertionError("empty tree")  # the grammar has no empty rules

    def apply(self, query: ast.Query, name: str, node: Tree[Token] | Token) -> ast.Query:
        if name == "where":
            if isinstance(node, Tree) and node.data == "where":
                body = [c for c in node.children if isinstance(c, Tree | Token)][1:]
                return replace(query, where=self.expr(body[0]) if body else None)
            return replace(query, where=self.expr(node))
        head, *args = [_node(c) for c in _tree(node).children]
        if name == "select":
            items = tuple(self.select_item(a) for a in args if isinstance(a, Tree))
            return replace(query, select=items)
        if name == "groupby":
            keys = tuple(ast.Key(str(a), _pos(a)) for a in args if isinstance(a, Token))
            if len(keys) > MAX_GROUPBY_KEYS:
                raise self.fail(
                    f"groupby() takes at most {MAX_GROUPBY_KEYS} keys, got {len(keys)}",
                    keys[MAX_GROUPBY_KEYS].pos,
                    "group by fewer keys",
                )
            return replace(query, groupby=keys)
        if name == "calculate":
            return replace(query, calculate=self.calc(_tree(args[0])))
        if name == "having":
            calc, op, number = _tree(args[0]), _token(args[1]), _token(args[2])
            having = ast.Having(self.calc(calc), str(op), self.number(number), _pos(_token(head)))
            return replace(query, having=having)
        text, pos = str(args[0]), _pos(_token(args[0]))
        if name == "sort":
            if text.lower() not in {"asc", "desc"}:
                raise self.fail(f"sort() takes asc or desc, not '{text}'", pos, "sort(desc)")
            return replace(query, sort="asc" if text.lower() == "asc" else "desc")
        if name == "limit":
            if not text.isdigit() or int(text) < 1:
                raise self.fail(f"limit() needs a positive whole number, not '{text}'", pos)
            return replace(query, limit=int(text))
        return replace(query, timeslice=self.timeslice(text, pos))

    def timeslice(self, text: str, pos: ast.Pos) -> ast.Timeslice:
        if text.isdigit():
            if not 1 <= int(text) <= MAX_BUCKETS:
                raise self.fail(
                    f"timeslice() takes 1 to {MAX_BUCKETS} buckets, not {text}", pos,
                    "use a width instead, e.g. timeslice(1h)",
                )  # fmt: skip
            return ast.Timeslice(int(text), None, pos)
        width = _WIDTH.fullmatch(text)
        if not width or int(width.group(1)) < 1:
            raise self.fail(
                f"timeslice() takes a bucket count or a width like 30m, 1h, 1d; not '{text}'", pos
            )
        width_ms = int(width.group(1)) * _UNIT_MS[width.group(2).lower()]
        # Wider than any time range is meaningless, and past this a time span cannot be held.
        if width_ms > MAX_WIDTH_MS:
            raise self.fail(
                f"timeslice({text}) is wider than {MAX_WIDTH_MS // _UNIT_MS['d']} days", pos,
                "use a width of at most a few years, e.g. timeslice(30d)",
            )  # fmt: skip
        return ast.Timeslice(None, width_ms, pos)

    def number(self, token: Token) -> float:
        value = parse_number(str(token))
        if value is None:
            raise self.fail(f"'{token}' is not a number", _pos(token))
        return value

    def select_item(self, node: Tree[Token]) -> ast.SelectItem:
        tokens = [c for c in node.children if isinstance(c, Token) and c.type == "WORD"]
        alias = str(tokens[1]) if len(tokens) > 1 else None
        return ast.SelectItem(ast.Key(str(tokens[0]), _pos(tokens[0])), alias)

    def calc(self, node: Tree[Token]) -> ast.Calc:
        tokens = [c for c in node.children if isinstance(c, Token)]
        pos = _pos(tokens[0])
        if node.data in {"calc_param", "calc_inner"}:
            if tokens[0].lower() != "percentile":
                raise self.fail(f"'{tokens[0]}' takes no argument", pos, "percentile(95):key does")
            if node.data == "calc_param":
                pct = self.number(tokens[1])
                return self.make_calc(
                    "percentile", ast.Key(str(tokens[2]), _pos(tokens[2])), pct, pos
                )
            # Rapid7's own form: percentile(99.99:key), the key inside the parentheses.
            number, _, key_text = str(tokens[1]).partition(":")
            at = _pos(tokens[1])
            if not key_text:
                raise self.fail("percentile needs a key", at, "write percentile(95:some_key)")
            pct = self.number(Token("WORD", number, line=at.line, column=at.column))
            inner = ast.Key(key_text, ast.Pos(at.line, at.column + len(number) + 1))
            return self.make_calc("percentile", inner, pct, pos)
        name, _, key_text = str(tokens[0]).partition(":")
        key = ast.Key(key_text, ast.Pos(pos.line, pos.column + len(name) + 1)) if key_text else None
        pctl = _PCTL.fullmatch(name)
        if pctl:
            return self.make_calc("percentile", key, float(pctl.group(1)), pos)
        fn = CALC_NAMES.get(name.lower())
        if fn is None:
            near = suggest(name, [*CALC_NAMES, "percentile(95)"])
            known = "use count, unique, sum, average, min, max, median, percentile(95):key, "
            known += "standarddeviation or bytes"
            raise self.fail(
                f"unknown calculation '{name}'", pos, f"did you mean {near}?" if near else known
            )
        return self.make_calc(fn, key, None, pos)

    def make_calc(self, fn: str, key: ast.Key | None, pct: float | None, pos: ast.Pos) -> ast.Calc:
        if fn in {"count", "bytes"}:
            if fn == "bytes" and key is not None:
                raise self.fail("bytes takes no key", pos, "write calculate(bytes)")
        elif key is None:
            raise self.fail(f"{fn} needs a key", pos, f"write calculate({fn}:some_key)")
        if pct is not None and not 0 <= pct <= 100:
            raise self.fail(f"a percentile is between 0 and 100, not {pct:g}", pos)
        head = f"percentile({pct:g})" if fn == "percentile" else fn
        label = f"{head}:{key.name}" if key else head
        return ast.Calc(fn, key, pct, label, pos)  # type: ignore[arg-type]

    def expr(self, node: Tree[Token] | Token) -> ast.Expr:
        if isinstance(node, Token):
            if node.type == "WORD":
                return ast.Word(str(node), False, _pos(node))
            if node.type == "REGEX":
                return ast.RegexSearch(self.regex(node))
            return ast.Word(unquote(node), True, _pos(node))
        kids = [c for c in node.children if isinstance(c, Tree | Token)]
        if node.data in {"or_expr", "and_expr"}:
            if node.data == "and_expr":
                self.check_implicit_and(kids)
            items = tuple(self.expr(k) for k in kids if not _is_bool_op(k))
            return ast.Or(items) if node.data == "or_expr" else ast.And(items)
        if node.data == "negation":
            return ast.Not(self.expr(kids[-1]))
        if node.data in {"bare_word", "quoted_word", "regex_search"}:
            return self.expr(kids[0])
        return self.comparison(kids)

    def check_implicit_and(self, kids: list[Tree[Token] | Token]) -> None:
        """Words side by side are ANDed, but ``key CONTAIN value`` is a misspelt operator.

        An upper-case word close to an operator, between two others with no AND, is refused
        with the operator it resembles; quoting it searches for the word itself.
        """
        words = [_bare_word(k) for k in kids]
        for word in words:
            if word is None:
                continue
            if word.lower() in {"and", "or", "not"} and not word.isupper():
                raise self.fail(
                    f"unexpected '{word}'", _pos(word),
                    f"write the boolean operator in upper case: {word.upper()} "
                    f'(to search for the word, quote it: "{word}")',
                )  # fmt: skip
            near = suggest(str(word), CLAUSES)
            if near and self.text[word.end_pos or 0 : (word.end_pos or 0) + 1] == "(":
                raise self.fail(f"unknown clause '{word}'", _pos(word), f"did you mean {near}()?")
        for before, word, after in zip(words, words[1:], words[2:], strict=False):
            if before is None or word is None or after is None or not word.isupper():
                continue
            near = suggest(str(word), OPERATORS)
            if near:
                raise self.fail(
                    f"'{word}' is not an operator", _pos(word),
                    f"did you mean {near}? (to search for the word, quote it: \"{word}\")",
                )  # fmt: skip

    def comparison(self, kids: list[Tree[Token] | Token]) -> ast.Compare:
        key_token, *rest = kids
        key_token = _token(key_token)
        negated = isinstance(rest[0], Token) and rest[0].type == "NEGATE"
        op_token, value_node = _token(rest[-2]), rest[-1]
        op = str(op_token).upper()
        if op not in OPERATORS:
            near = suggest(op, OPERATORS)
            raise self.fail(
                f"'{op_token}' is not an operator", _pos(op_token),
                f"did you mean {near}?" if near else "",
            )  # fmt: skip
        value = self.value(value_node)
        listy = op.endswith(("-ANY", "-ALL")) or op in {"IN", "IIN"}
        if listy != isinstance(value, ast.ValueList):
            wanted = "a list like [a, b]" if listy else "a single value"
            raise self.fail(f"{op} takes {wanted}", value.pos)
        key = ast.Key(str(key_token), _pos(key_token))
        return ast.Compare(key, op, negated, value, _pos(key_token))

    def value(self, node: Tree[Token] | Token) -> ast.Value:
        if isinstance(node, Token):
            if node.type == "REGEX":
                return self.regex(node)
            if node.type == "WORD":
                return ast.Text(str(node), False, _pos(node))
            return ast.Text(unquote(node), True, _pos(node))
        kids = [c for c in node.children if isinstance(c, Token)]
        if node.data == "value_list":
            bracket, *entries = kids
            items = tuple(self.value(k) for k in entries)
            texts = tuple(i for i in items if isinstance(i, ast.Text))
            if not texts:
                raise self.fail("an empty list matches nothing", _pos(bracket), "put values in [ ]")
            return ast.ValueList(texts, _pos(bracket))
        head, arg = kids[0], kids[-1]
        text = unquote(arg) if arg.type != "WORD" else str(arg)
        if node.data == "nocase":
            return ast.NoCase(text, _pos(head))
        return ast.IpRange(text, _pos(head))

    def regex(self, token: Token) -> ast.Regex:
        raw = str(token)
        ignore_case = raw.endswith("i")
        body = raw[1 : -2 if ignore_case else -1].replace("\\/", "/")
        # InsightIDR writes named groups (?<name>...); Python's re (which checks the pattern
        # here and lists its groups) needs (?P<name>...), which RE2 reads too.
        body = _NAMED_GROUP.sub(r"(?P<\1>", body)
        try:
            re.compile(body)
        except re.error as exc:
            raise self.fail(f"invalid regular expression: {exc.msg}", _pos(token)) from None
        return ast.Regex(body, ignore_case, _pos(token))


def _node(item: object) -> Tree[Token] | Token:
    if isinstance(item, Tree | Token):
        return item
    raise TypeError(f"unexpected parse node {item!r}")  # the grammar builds only these


def _tree(item: object) -> Tree[Token]:
    if isinstance(item, Tree):
        return item
    raise TypeError(f"expected a subtree, got {item!r}")


def _token(item: object) -> Token:
    if isinstance(item, Token):
        return item
    raise TypeError(f"expected a token, got {item!r}")


def _bare_word(node: Tree[Token] | Token) -> Token | None:
    """The token of an unquoted word standing alone (an AND between words is not one)."""
    if isinstance(node, Tree) and node.data == "bare_word":
        node = _node(node.children[0])
    return node if isinstance(node, Token) and node.type == "WORD" else None


def _is_bool_op(node: Tree[Token] | Token) -> bool:
    return isinstance(node, Token) and node.type in {"AND", "OR"}


_NUMBER = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[A-Za-z%]*")


def parse_number(text: str) -> float | None:
    """The number in ``text``, units after it ignored (``1e3``, ``1000.0``, ``250ms``)."""
    match = _NUMBER.fullmatch(text.strip())
    return float(match.group(1)) if match else None
