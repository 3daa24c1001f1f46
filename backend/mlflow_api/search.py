"""MLflow's run search language, the subset PruneLab answers: comparisons joined by AND, and order_by.

`metrics.acc > 0.9 AND params.lr = '0.01' AND tags.team LIKE 'vis%' AND attributes.status = 'FINISHED'`:
an entity (metrics, params, tags, attributes), a key (backquoted or double-quoted when it holds dots
or spaces), an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN) and a value (a number for
metrics, a quoted string otherwise; IN takes a parenthesised list). Anything else (OR,
parentheses, datasets) is refused with INVALID_PARAMETER_VALUE naming what to change.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prunelab.server.mlflow_api.errors import invalid

ENTITIES = {
    "metric": "metrics", "metrics": "metrics",
    "param": "params", "params": "params", "parameter": "params", "parameters": "params",
    "tag": "tags", "tags": "tags",
    "attribute": "attributes", "attributes": "attributes", "attr": "attributes", "run": "attributes",
}  # fmt: skip
ATTRIBUTES = {"run_id", "run_name", "status", "start_time", "end_time", "user_id", "experiment_id", "lifecycle_stage"}
NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<backquoted>`[^`]*`)
      | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<op><=|>=|!=|=|<|>|\(|\)|,|\.)
      | (?P<word>[A-Za-z_][\w]*)
    )""",
    re.X,
)


@dataclass(frozen=True)
class Clause:
    entity: str
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class Order:
    entity: str
    key: str
    descending: bool


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid(f"Invalid filter string {text!r}: cannot read from {text[position:][:30]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(kind: str, token: str) -> str:
    if kind == "string":
        return token[1:-1].replace(token[0] * 2, token[0])
    if kind == "backquoted":
        return token[1:-1]
    return token


def _identifier(tokens: list[tuple[str, str]], at: int, text: str) -> tuple[str, str, int]:
    """(entity, key, next index) of `entity.key`; a bare attribute name is an attribute."""
    kind, word = tokens[at]
    if kind != "word":
        raise invalid(f"Invalid filter string {text!r}: expected an entity such as metrics.acc, got {word!r}")
    if at + 1 < len(tokens) and tokens[at + 1] == ("op", "."):
        entity = ENTITIES.get(word.lower())
        if entity is None:
            raise invalid(f"Invalid entity type {word!r}: use metrics, params, tags or attributes")
        if at + 2 >= len(tokens):
            raise invalid(f"Invalid filter string {text!r}: {word}. needs a key")
        key_kind, key = tokens[at + 2]
        if key_kind not in ("word", "backquoted", "string"):
            raise invalid(f"Invalid filter string {text!r}: bad key after {word}.")
        key = _unquote(key_kind, key)
        at += 3
        # An unquoted key may itself hold dots (tags.mlflow.runName).
        while key_kind == "word" and at + 1 < len(tokens) and tokens[at] == ("op", ".") and tokens[at + 1][0] == "word":
            key += "." + tokens[at + 1][1]
            at += 2
    else:
        entity, key, at = "attributes", word, at + 1
    if entity == "attributes":
        key = {"run_uuid": "run_id", "name": "run_name", "created": "start_time"}.get(key, key)
        if key not in ATTRIBUTES:
            raise invalid(f"Invalid attribute key {key!r}: use one of {', '.join(sorted(ATTRIBUTES))}")
    return entity, key, at


def parse_filter(text: str) -> list[Clause]:
    """The clauses of a filter string (all must hold); [] for an empty filter."""
    tokens = _tokens(text or "")
    clauses: list[Clause] = []
    at = 0
    while at < len(tokens):
        entity, key, at = _identifier(tokens, at, text)
        if at >= len(tokens):
            raise invalid(f"Invalid filter string {text!r}: {entity}.{key} needs a comparison")
        op = tokens[at][1]
        op_upper = op.upper()
        if op_upper == "NOT" and at + 1 < len(tokens) and tokens[at + 1][1].upper() in ("IN", "LIKE", "ILIKE"):
            op_upper = "NOT " + tokens[at + 1][1].upper()
            at += 1
        if not (op in COMPARISONS or op_upper in ("LIKE", "ILIKE", "IN", "NOT IN", "NOT LIKE", "NOT ILIKE")):
            raise invalid(f"Invalid comparator {op!r} in filter {text!r}: use =, !=, <, <=, >, >=, LIKE, ILIKE, IN")
        at += 1
        if op_upper in ("IN", "NOT IN"):
            values, at = _value_list(tokens, at, text)
            clauses.append(Clause(entity, key, op_upper, values))
        else:
            if at >= len(tokens) or tokens[at][0] not in ("string", "number"):
                raise invalid(f"Invalid filter string {text!r}: {entity}.{key} {op} needs a value")
            value_kind, raw = tokens[at]
            at += 1
            clauses.append(
                Clause(
                    entity,
                    key,
                    op_upper if op_upper in ("LIKE", "ILIKE") else op,
                    _typed(entity, key, value_kind, raw, text),
                )
            )
        if at < len(tokens):
            if tokens[at][1].upper() != "AND":
                raise invalid(f"Invalid filter string {text!r}: clauses are joined by AND only (got {tokens[at][1]!r})")
            at += 1
            if at >= len(tokens):
                raise invalid(f"Invalid filter string {text!r}: nothing after AND")
    return clauses


def _typed(entity: str, key: str, kind: str, raw: str, text: str) -> Any:
    numeric = entity == "metrics" or (entity == "attributes" and key in NUMERIC_ATTRIBUTES)
    if numeric:
        if kind != "number":
            raise invalid(f"Invalid filter string {text!r}: {entity}.{key} compares with a number, got {raw}")
        return float(raw)
    if kind != "string":
        raise invalid(f"Invalid filter string {text!r}: {entity}.{key} compares with a quoted string, got {raw}")
    return _unquote(kind, raw)


def _value_list(tokens: list[tuple[str, str]], at: int, text: str) -> tuple[tuple[str, ...], int]:
    if at >= len(tokens) or tokens[at] != ("op", "("):
        raise invalid(f"Invalid filter string {text!r}: IN takes a list such as ('a', 'b')")
    values: list[str] = []
    at += 1
    while at < len(tokens) and tokens[at] != ("op", ")"):
        kind, raw = tokens[at]
        if kind == "string":
            values.append(_unquote(kind, raw))
        elif tokens[at] != ("op", ","):
            raise invalid(f"Invalid filter string {text!r}: IN lists quoted strings")
        at += 1
    if at >= len(tokens):
        raise invalid(f"Invalid filter string {text!r}: IN list is not closed")
    return tuple(values), at + 1


def _like(pattern: str, flags: int = 0) -> re.Pattern[str]:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(regex, flags | re.S)


def holds(clause: Clause, actual: Any) -> bool:
    """Whether a run whose value for the clause's key is `actual` (None: absent) passes it."""
    if actual is None:
        return False
    if clause.op in ("IN", "NOT IN"):
        return (str(actual) in clause.value) == (clause.op == "IN")
    if clause.op.endswith("LIKE"):
        found = _like(clause.value, re.I if "ILIKE" in clause.op else 0).fullmatch(str(actual)) is not None
        return found != clause.op.startswith("NOT")
    if isinstance(clause.value, float):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return False
    return COMPARISONS[clause.op](actual, clause.value)


def parse_order_by(items: list[str]) -> list[Order]:
    orders = []
    for item in items:
        parts = item.strip().rsplit(None, 1)
        descending = False
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            descending = parts[1].upper() == "DESC"
            item = parts[0]
        tokens = _tokens(item)
        entity, key, at = _identifier(tokens, 0, item)
        if at != len(tokens):
            raise invalid(f"Invalid order_by clause {item!r}: use <entity>.<key> [ASC|DESC]")
        orders.append(Order(entity, key, descending))
    return orders
