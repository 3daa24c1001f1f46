"""The runs filter language, parsed with lark into a small tree and compiled to SQL for PostgreSQL and SQLite.

    accuracy > 0.98 kind:polynomial tag:sweep          terms side by side must all hold
    status:failed or (tag:"ablation 2" and not owner:ana)
    created>=2026-11-01 name:"my run" mnist

MLflow's `search_runs` filter strings (backend/mlflow_api/search.py) parse into the same tree, with one more node,
`KeyCompare` (a param, a key/value tag, a latest metric value or a named column against a value, with MLflow's
LIKE, ILIKE and IN), so both languages compile here, to one SQL path.

A term is a comparison on a final metric (`key op number`, op one of > >= < <= = !=; the key is any key of
a run's summary or latest values, the summary's winning where both have it), a field (`tag:`, `status:`,
`kind:`, `owner:`, `dataset:`, `model:`, `name:`, `id:`, `created:`), a date comparison on `created`, or a
bare word or quoted phrase matched, case-insensitively, against the name and the note. A run without the
compared value does not match (and so matches under `not`). Mistakes raise `InvalidFilter` naming the column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from sqlalchemy import Boolean, Float, Select, String, Text, and_, cast, exists, false, func, literal, not_, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from prunelab.core.errors import InvalidFilter
from prunelab.core.specs import SCHEDULE_KINDS
from prunelab.server.models import LatestMetric, Run, RunParam, RunStatus, RunTagValue, User

MAX_FILTER_LENGTH = 500
MAX_METRICS = 16  # LEFT JOINs per query (SQLite joins at most 64 tables)
MAX_DEPTH = 16  # nested parentheses and `not`s; deeper is refused, not recursed into

# Delimiters end an unquoted word; keywords are keywords only when a delimiter (or the end) follows them.
_WORD_CHARS = r'[^\s()":<>=!]'
GRAMMAR = rf"""
?start: any
?any: all (_OR all)*
?all: negation (_AND? negation)*
?negation: _NOT negation -> not_
    | atom
?atom: "(" any ")"
    | TERM OP value -> comparison
    | TERM ":" value -> field
    | value -> word
?value: TERM | STRING

_AND.2: /(?i:and)(?!{_WORD_CHARS})/
_OR.2: /(?i:or)(?!{_WORD_CHARS})/
_NOT.2: /(?i:not)(?!{_WORD_CHARS})/
OP: ">=" | "<=" | "!=" | ">" | "<" | "="
TERM: /{_WORD_CHARS}+/
STRING: /"(?:[^"\\]|\\.)*"/
%ignore /\s+/
"""
_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False, propagate_positions=False)

# What a parse error says it expected, in the user's words.
_EXPECTED = {
    "TERM": "a word or value",
    "STRING": 'a "quoted phrase"',
    "OP": "a comparison (> >= < <= = !=)",
    "COLON": "':'",
    "LPAR": "'('",
    "RPAR": "')'",
    "_AND": "'and'",
    "_OR": "'or'",
    "_NOT": "'not'",
    "$END": "the end of the filter",
}

Op = Literal[">", ">=", "<", "<=", "=", "!="]
TEXT_FIELDS = ("tag", "status", "kind", "owner", "dataset", "model", "name")
FIELDS = (*TEXT_FIELDS, "id", "created")
# Names the runs table shows for values stored under another key (or in the resolved plan).
METRIC_ALIASES = {"final_sparsity": "measured_sparsity", "sparsity": "measured_sparsity"}
PLAN_NUMBERS = {"target": "target_sparsity"}
PLAIN_TAG = re.compile(r"^[!#-\[\]-~]+$")  # printable ASCII but quote and backslash: JSON writes them as they are
METRIC_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]{0,199}$")


# The parsed filter: a tree of these, evaluated by `clause` (and by brute force in the tests).
@dataclass(frozen=True)
class Word:
    """Case-insensitive substring of the run's name or note."""

    text: str


@dataclass(frozen=True)
class FieldIs:
    """`tag`, `status`, `kind`, `owner`, `dataset`, `model`: equal, ignoring case; `name`: a substring."""

    field: str
    value: str


@dataclass(frozen=True)
class MetricCompare:
    """A final metric (the summary's number, else the latest value; `target`: the plan's) against a number."""

    key: str
    op: Op
    number: float


@dataclass(frozen=True)
class IdCompare:
    op: Op
    number: int


@dataclass(frozen=True)
class CreatedCompare:
    op: Op
    moment: datetime


@dataclass(frozen=True)
class All:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Any_:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    part: Filter


KeySource = Literal["param", "tag", "latest", "column"]
KeyOp = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN"]


@dataclass(frozen=True)
class KeyCompare:
    """A run's value under `key` in `source` against `value` (a run without one does not match).

    `param` and `tag`: the run's param or key/value tag (text); `latest`: the latest logged value of a metric
    (a number; non-finite ones are blanks); `column`: a column the query names (`MetricColumns.columns`).
    LIKE is case-sensitive on both databases, ILIKE is not; IN and NOT IN take a tuple of strings.
    """

    source: KeySource
    key: str
    op: KeyOp
    value: str | float | tuple[str, ...]


Filter = Word | FieldIs | MetricCompare | IdCompare | CreatedCompare | KeyCompare | All | Any_ | Not


def parse_filter(text: str) -> Filter | None:
    """The filter in `text`, or None when it is blank; InvalidFilter (with the column) when it is malformed."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(MAX_FILTER_LENGTH + 1, f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        return None
    if "\x00" in text:  # no database text holds NUL (PostgreSQL refuses it outright)
        raise InvalidFilter(text.index("\x00") + 1, "the filter holds a NUL character")
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    _check_depth(tree)
    return _build(tree)


def _syntax_error(text: str, error: UnexpectedInput) -> InvalidFilter:
    if isinstance(error, UnexpectedCharacters):
        character = text[error.pos_in_stream] if error.pos_in_stream is not None else ""
        if character == '"':
            return InvalidFilter(error.column, 'this quote is never closed: end the phrase with "')
        return InvalidFilter(error.column, f"unexpected {character!r}: {_expected_words(error.allowed)}")
    if isinstance(error, UnexpectedToken | UnexpectedEOF):
        token = getattr(error, "token", None)
        at_end = token is None or token.type == "$END"
        column = len(text) + 1 if at_end else error.column
        found = "the end of the filter" if at_end else repr(str(token))
        expected = error.expected if isinstance(error, UnexpectedEOF) else error.accepts or error.expected
        return InvalidFilter(column, f"found {found}, {_expected_words(expected)}")
    return InvalidFilter(getattr(error, "column", 1), str(error))


def _expected_words(terminals: Collection[object]) -> str:
    words = sorted({_EXPECTED.get(str(name), str(name).lower()) for name in terminals})
    if not words:
        return "which does not fit here"
    return "expected " + (words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1])


def _check_depth(tree: Tree[Token]) -> None:
    # Iterative, so that a filter of 200 opening parentheses is refused rather than blowing the stack.
    pending: list[tuple[Tree[Token] | Token, int]] = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, Tree):
            if depth > MAX_DEPTH:
                first = next(node.scan_values(lambda value: isinstance(value, Token)), None)
                raise InvalidFilter(getattr(first, "column", 1), f"nested deeper than {MAX_DEPTH} levels")
            pending.extend((child, depth + 1) for child in node.children)


def _build(node: Tree[Token] | Token) -> Filter:
    if isinstance(node, Token):  # a lone word or quoted phrase (the `word` rule is inlined when alone)
        return Word(_text(node))
    kind, children = node.data, node.children
    if kind == "any":
        return Any_(tuple(_build(child) for child in children))
    if kind == "all":
        return All(tuple(_build(child) for child in children))
    if kind == "not_":
        return Not(_build(children[0]))
    if kind == "word":
        return Word(_text(children[0]))  # type: ignore[arg-type]
    if kind == "field":
        name, value = children
        return _field(name, value)  # type: ignore[arg-type]
    if kind == "comparison":
        name, op, value = children
        return _comparison(name, op, value)  # type: ignore[arg-type]
    raise InvalidFilter(1, f"unknown construct {kind}")  # pragma: no cover - the grammar has no other rule


def _column(token: Token) -> int:
    return token.column or 1


def _text(token: Token) -> str:
    if token.type == "STRING":
        return re.sub(r"\\(.)", r"\1", str(token)[1:-1])
    return str(token)


def _field(name: Token, value: Token) -> Filter:
    field, text = str(name).lower(), _text(value)
    if field not in FIELDS:
        raise InvalidFilter(
            _column(name),
            f"unknown field {str(name)!r}: fields are {', '.join(f + ':' for f in FIELDS)}; "
            f"compare metrics with an operator, e.g. {name} > 0.9",
        )
    if field == "status" and text.lower() not in {status.value for status in RunStatus}:
        raise InvalidFilter(_column(value), f"unknown status {text!r}: one of {', '.join(s.value for s in RunStatus)}")
    if field == "kind" and text.lower() not in SCHEDULE_KINDS:
        raise InvalidFilter(_column(value), f"unknown schedule kind {text!r}: one of {', '.join(SCHEDULE_KINDS)}")
    if field == "id":
        return IdCompare("=", _integer(value))
    if field == "created":
        return _created("=", value)
    if not text:
        raise InvalidFilter(_column(value), f"{field}: needs a value")
    return FieldIs(field, text)


def _comparison(name: Token, op_token: Token, value: Token) -> Filter:
    key, op = str(name), str(op_token)
    assert op in (">", ">=", "<", "<=", "=", "!=")
    if key.lower() == "created":
        return _created(op, value)  # type: ignore[arg-type]
    if key.lower() == "id":
        return IdCompare(op, _integer(value))  # type: ignore[arg-type]
    if key.lower() in TEXT_FIELDS:
        raise InvalidFilter(_column(op_token), f"{key} takes ':', not {op!r} (e.g. {key}:value)")
    if not METRIC_KEY.match(key):
        raise InvalidFilter(_column(name), f"{key!r} is not a metric key (letters, digits, _ . / -)")
    try:
        number = float(_text(value))
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidFilter(_column(value), f"expected a number after {key} {op}, found {str(value)!r}")
    return MetricCompare(key, op, number)  # type: ignore[arg-type]


def _integer(value: Token) -> int:
    text = _text(value)
    if not (text.isascii() and text.isdigit() and len(text) < 10):
        raise InvalidFilter(_column(value), f"expected a run id (digits), found {text!r}")
    return int(text)


def _created(op: Op, value: Token) -> Filter:
    text = _text(value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return _day(op, start, start + timedelta(days=1))
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidFilter(
            _column(value), f'expected a date like 2026-11-01 (or a quoted time "2026-11-01 12:00"), found {text!r}'
        ) from None
    return CreatedCompare(op, moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _day(op: Op, start: datetime, end: datetime) -> Filter:
    """A date stands for its whole (UTC) day: `>` is after it, `<=` up to its end."""
    if op == ">":
        return CreatedCompare(">=", end)
    if op == ">=":
        return CreatedCompare(">=", start)
    if op == "<":
        return CreatedCompare("<", start)
    if op == "<=":
        return CreatedCompare("<", end)
    within = All((CreatedCompare(">=", start), CreatedCompare("<", end)))
    return within if op == "=" else Not(within)


# --- SQL -------------------------------------------------------------------------------------------------


class json_number(FunctionElement[float]):
    """`column[key]` as a float when it is a JSON number there, else NULL (strings, objects, booleans, missing).

    The key is bound twice, as itself (PostgreSQL) and as a JSON path (SQLite): a path built in SQL would be
    concatenated again for every row, twice (a tenth of a 10,000-run sort on SQLite)."""

    type = Float()
    inherit_cache = True
    name = "json_number"

    def __init__(self, column: Any, key: str) -> None:
        super().__init__(column, literal(key, String()), literal(f'$."{key}"', String()))


@compiles(json_number, "postgresql")
def _json_number_postgresql(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = (compiler.process(clause, **kw) for clause in list(element.clauses)[:2])
    return f"CASE WHEN json_typeof({column} -> {key}) = 'number' THEN CAST(({column} ->> {key}) AS FLOAT) END"


@compiles(json_number, "sqlite")
def _json_number_sqlite(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    column_clause, _, path_clause = element.clauses
    column, path = compiler.process(column_clause, **kw), compiler.process(path_clause, **kw)
    return f"CASE WHEN json_type({column}, {path}) IN ('integer', 'real') THEN json_extract({column}, {path}) END"


class has_tag(FunctionElement[bool]):
    """Whether the JSON list `column` holds `tag`, ignoring case."""

    type = Boolean()
    inherit_cache = True
    name = "has_tag"


@compiles(has_tag, "postgresql")
def _has_tag_postgresql(element: has_tag, compiler: SQLCompiler, **kw: Any) -> str:
    column, tag = (compiler.process(clause, **kw) for clause in element.clauses)
    return (
        f"(json_typeof({column}) = 'array' AND EXISTS "
        f"(SELECT 1 FROM json_array_elements_text({column}) AS tag_item WHERE lower(tag_item) = lower({tag})))"
    )


@compiles(has_tag, "sqlite")
def _has_tag_sqlite(element: has_tag, compiler: SQLCompiler, **kw: Any) -> str:
    column, tag = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"EXISTS (SELECT 1 FROM json_each({column}) AS tag_item WHERE lower(tag_item.value) = lower({tag}))"


class like_case_sensitive(FunctionElement[bool]):
    """`value LIKE pattern`, case-sensitive on both databases (SQLite's LIKE ignores ASCII case: GLOB does not)."""

    type = Boolean()
    inherit_cache = True
    name = "like_case_sensitive"


@compiles(like_case_sensitive, "postgresql")
def _like_postgresql(element: like_case_sensitive, compiler: SQLCompiler, **kw: Any) -> str:
    value, like, _glob = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({value} LIKE {like})"


@compiles(like_case_sensitive, "sqlite")
def _like_sqlite(element: like_case_sensitive, compiler: SQLCompiler, **kw: Any) -> str:
    value, _like, glob = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({value} GLOB {glob})"


def _glob_of_like(pattern: str) -> str:
    """The GLOB pattern matching what the LIKE `pattern` (no escape character) matches."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(character, character) for character in pattern)


class MetricColumns:
    """Final metric values, params and key/value tags for one query: each (table, key) it reads is one LEFT JOIN
    (a hash join, not a lookup per run).

    `columns` names the columns a `KeyCompare` on `column` may read (MLflow's attributes, an experiment's name).
    """

    def __init__(self, columns: Mapping[str, ColumnElement[Any]] | None = None) -> None:
        self.joined: dict[tuple[type[LatestMetric | RunParam | RunTagValue], str], Any] = {}  # -> its alias
        self.columns = dict(columns or {})

    def _row(self, table: type[LatestMetric | RunParam | RunTagValue], key: str) -> Any:
        """The run's row of `table` under `key`, joined once per query (NULL columns when the run has none)."""
        if (table, key) not in self.joined:
            if len(self.joined) >= MAX_METRICS:
                raise InvalidFilter(
                    1, f"a filter and sort may name at most {MAX_METRICS} different metrics (params and tags included)"
                )
            prefix = {LatestMetric: "latest", RunParam: "param", RunTagValue: "tag"}[table]
            self.joined[table, key] = aliased(table, name=f"{prefix}_{len(self.joined)}")
        return self.joined[table, key]

    def value(self, key: str) -> ColumnElement[float]:
        """A run's final value of `key`: its summary's number, else its latest logged value (NULL: non-finite/none)."""
        if key in PLAN_NUMBERS:
            return json_number(Run.plan, PLAN_NUMBERS[key])
        stored = METRIC_ALIASES.get(key, key)
        latest = self._row(LatestMetric, stored)
        return func.coalesce(json_number(Run.summary, stored), latest.value, type_=Float())

    def latest(self, key: str) -> ColumnElement[float]:
        """A run's latest logged value of `key`, as logged (no summary, no alias); NULL when non-finite or none."""
        return self._row(LatestMetric, key).value  # type: ignore[no-any-return]

    def of(self, source: KeySource, key: str) -> ColumnElement[Any]:
        """What a `KeyCompare` on (`source`, `key`) compares, and what a sort on it orders by."""
        if source == "latest":
            return self.latest(key)
        if source == "column":
            if key not in self.columns:
                raise InvalidFilter(1, f"unknown column {key!r}: one of {', '.join(sorted(self.columns))}")
            return self.columns[key]
        return self._row(RunParam if source == "param" else RunTagValue, key).value  # type: ignore[no-any-return]

    def join(self, query: Select[Any]) -> Select[Any]:
        for (_, key), row in self.joined.items():
            query = query.outerjoin(row, and_(row.run_id == Run.id, row.key == key))
        return query


def _compared(
    value: ColumnElement[Any] | QueryableAttribute[Any], op: Op, other: object, negated: bool
) -> ColumnElement[bool]:
    compared = {
        ">": value > other,
        ">=": value >= other,
        "<": value < other,
        "<=": value <= other,
        "=": value == other,
        "!=": value != other,
    }[op]
    return _two_valued(compared, negated)


def _two_valued(condition: ColumnElement[bool], negated: bool) -> ColumnElement[bool]:
    """`condition`, false where it is NULL (a run without the value), when a `not` above it would see the NULL.

    A run without the value does not match, so `not` matches it (SQL's NULL would match neither). Where no `not`
    encloses it, WHERE already treats NULL as false: the bare comparison then lets the planner use the column's
    statistics and turn the LEFT JOIN it reads into an inner join (a coalesce hides both).
    """
    return func.coalesce(condition, false()) if negated else condition


def clause(parsed: Filter | None, metrics: MetricColumns, negated: bool = False) -> ColumnElement[bool]:
    """The SQL condition on `runs` (with `metrics` joined) that holds exactly for the runs `parsed` matches.

    A WHERE condition: it may be NULL where it does not hold. `negated`: an odd number of `not`s encloses it.
    """
    if parsed is None:
        return true()
    if isinstance(parsed, All):
        return and_(*(clause(part, metrics, negated) for part in parsed.parts))
    if isinstance(parsed, Any_):
        return or_(*(clause(part, metrics, negated) for part in parsed.parts))
    if isinstance(parsed, Not):
        return not_(clause(parsed.part, metrics, not negated))
    if isinstance(parsed, Word):
        needle = parsed.text.lower()
        return or_(
            func.lower(Run.name).contains(needle, autoescape=True),
            func.lower(Run.note).contains(needle, autoescape=True),
        )
    if isinstance(parsed, MetricCompare):
        return _compared(metrics.value(parsed.key), parsed.op, parsed.number, negated)
    if isinstance(parsed, IdCompare):
        return _compared(Run.id, parsed.op, parsed.number, negated)
    if isinstance(parsed, CreatedCompare):
        return _compared(Run.created_at, parsed.op, parsed.moment, negated)
    if isinstance(parsed, KeyCompare):
        return _key_clause(parsed, metrics.of(parsed.source, parsed.key), negated)
    return _field_clause(parsed)


def _key_clause(parsed: KeyCompare, value: ColumnElement[Any], negated: bool) -> ColumnElement[bool]:
    op, other = parsed.op, parsed.value
    if op in ("IN", "NOT IN"):
        assert isinstance(other, tuple)
        return _two_valued(value.in_(other) if op == "IN" else value.not_in(other), negated)
    if op in ("LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"):
        assert isinstance(other, str)
        matched: ColumnElement[bool]
        if "ILIKE" in op:
            matched = func.lower(value).like(func.lower(other))
        else:
            matched = like_case_sensitive(value, other, _glob_of_like(other))  # type: ignore[assignment]
        matched = func.coalesce(matched, false())
        # A run without the value matches neither LIKE nor NOT LIKE.
        return and_(value.is_not(None), not_(matched)) if op.startswith("NOT") else matched
    return _compared(value, op, other, negated)  # type: ignore[arg-type]


def _field_clause(parsed: FieldIs) -> ColumnElement[bool]:
    value = parsed.value.lower()
    if parsed.field == "tag":
        exact: ColumnElement[bool] = has_tag(Run.tags, parsed.value)  # type: ignore[assignment]
        if not PLAIN_TAG.match(parsed.value):
            return exact
        # A plain tag is written as "tag" in the stored JSON text: a LIKE on that text skips most runs before
        # their lists are unpacked (a tenth of the cost on 10,000 runs), and the exact test settles the rest.
        quoted = '"' + value.replace("/", "//").replace("%", "/%").replace("_", "/_") + '"'
        return and_(func.lower(cast(Run.tags, Text)).like(f"%{quoted}%", escape="/"), exact)
    if parsed.field == "status":
        return Run.status == value
    if parsed.field == "name":
        return func.lower(Run.name).contains(value, autoescape=True)
    if parsed.field == "owner":
        return exists().where(User.id == Run.owner_id, func.lower(User.name) == value)
    if parsed.field == "kind":
        return Run.schedule_kind == value
    return func.coalesce(func.lower(Run.spec[parsed.field].as_string()), "") == value
