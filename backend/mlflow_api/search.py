"""MLflow's run search language, parsed with lark into the runs filter's tree (backend/runs/filters.py).

`metrics.acc > 0.9 AND params.lr = '0.01' AND tags.team LIKE 'vis%' AND attributes.status = 'FINISHED'`:
an entity (metrics, params, tags, attributes and their other spellings), a key (backquoted or double-quoted
when it holds spaces or other characters; an unquoted one may hold dots, `tags.mlflow.runName`), a comparator
and a value: a number for metrics and times, a quoted string ('...' or "...") otherwise; IN and NOT IN take a
parenthesised list of strings. Comparisons are joined by AND (MLflow has no OR). Each comparison becomes a
`KeyCompare`, so a search compiles to SQL where the runs filter does; anything else is INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, cast

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput

from prunelab.server.mlflow_api.errors import invalid
from prunelab.server.runs.filters import All, Filter, KeyCompare, KeyOp, KeySource

ENTITIES: dict[str, KeySource] = {
    "metric": "latest", "metrics": "latest",
    "param": "param", "params": "param", "parameter": "param", "parameters": "param",
    "tag": "tag", "tags": "tag",
    "attribute": "column", "attributes": "column", "attr": "column", "run": "column",
}  # fmt: skip
ENTITY_NAMES = {"latest": "metrics", "param": "params", "tag": "tags", "column": "attributes"}
ATTRIBUTES = {"run_id", "run_name", "status", "start_time", "end_time", "user_id", "experiment_id", "lifecycle_stage"}
ATTRIBUTE_ALIASES = {"run_uuid": "run_id", "name": "run_name", "created": "start_time"}
NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN")

GRAMMAR = r"""
filter: comparison (_AND comparison)*
order: identifier DIRECTION?

comparison: identifier OP value -> compare
    | identifier NOT? LIKE string -> like
    | identifier NOT? IN "(" string ("," string)* ")" -> among
identifier: NAME ("." key)?
?key: NAME | BACKQUOTED | DQSTRING
value: NUMBER | string
string: SQSTRING | DQSTRING

_AND.2: /(?i:and)(?![\w.])/
NOT.2: /(?i:not)(?![\w.])/
LIKE.2: /(?i:i?like)(?![\w.])/
IN.2: /(?i:in)(?![\w.])/
DIRECTION.2: /(?i:asc|desc)(?![\w.])/
NAME: /[A-Za-z_][\w\-]*(\.[A-Za-z_0-9][\w\-]*)*/
BACKQUOTED: /`[^`]*`/
DQSTRING: /"(?:[^"\\]|\\.|"")*"/
SQSTRING: /'(?:[^'\\]|\\.|'')*'/
NUMBER: /[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/
OP: ">=" | "<=" | "!=" | "<>" | ">" | "<" | "=="| "="
%ignore /\s+/
"""
_PARSER = Lark(GRAMMAR, parser="lalr", start=["filter", "order"], maybe_placeholders=False)

# What a parse error says it expected, in MLflow's words.
_EXPECTED = {
    "NAME": "an identifier such as metrics.acc",
    "BACKQUOTED": "a `quoted key`",
    "DQSTRING": "a quoted string",
    "SQSTRING": "a quoted string",
    "NUMBER": "a number",
    "OP": "a comparator (=, !=, <, <=, >, >=)",
    "LIKE": "LIKE",
    "IN": "IN",
    "NOT": "NOT",
    "_AND": "AND",
    "DIRECTION": "ASC or DESC",
    "DOT": "'.'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "$END": "the end",
}


@dataclass(frozen=True)
class Order:
    """One `order_by` item: what `MetricColumns.of(source, key)` reads, and its direction."""

    source: KeySource
    key: str
    descending: bool


def parse_filter(text: str) -> Filter | None:
    """The filter string as the runs filter's tree (all comparisons must hold); None for an empty one."""
    if not (text or "").strip():
        return None
    tree = _parse(text, "filter", "filter string")
    parts = tuple(_comparison(child, text) for child in tree.children if isinstance(child, Tree))
    return parts[0] if len(parts) == 1 else All(parts)


def parse_order_by(items: list[str]) -> list[Order]:
    """`order_by` items (`metrics.acc DESC`, `attributes.start_time`, `params.lr ASC`) in order of precedence."""
    orders = []
    for item in items:
        tree = _parse(item, "order", "order_by clause")
        identifier, *direction = tree.children
        source, key = _identifier(cast(Tree[Token], identifier), item)
        descending = bool(direction) and str(direction[0]).upper() == "DESC"
        orders.append(Order(source, key, descending))
    return orders


def _parse(text: str, start: str, what: str) -> Tree[Token]:
    if "\x00" in text:  # no database text holds NUL (PostgreSQL refuses it outright)
        raise invalid(f"Invalid {what} {text!r}: it holds a NUL character")
    try:
        return _PARSER.parse(text, start=start)
    except UnexpectedInput as error:
        raise invalid(f"Invalid {what} {text!r}: {_syntax_error(text, error)}") from None


def _syntax_error(text: str, error: UnexpectedInput) -> str:
    column = getattr(error, "column", 0)
    if isinstance(error, UnexpectedCharacters):
        return f"unexpected {text[error.pos_in_stream or 0]!r} at column {column}"
    token = getattr(error, "token", None)
    if token is None or token.type == "$END":
        found, column = "the end", len(text) + 1
    else:
        found = repr(str(token))
        if str(token).upper() == "OR":
            return f"found 'OR' at column {column}: comparisons are joined by AND only"
    expected = sorted({_EXPECTED.get(str(name), str(name)) for name in getattr(error, "expected", ()) or ()})
    return f"found {found} at column {column}, expected {' or '.join(expected) or 'something else'}"


def _unquote(token: Token) -> str:
    raw = str(token)
    if token.type == "NAME":
        return raw
    body = raw[1:-1]
    if token.type == "BACKQUOTED":
        return body
    return re.sub(r"\\(.)", r"\1", body.replace(raw[0] * 2, raw[0]))


def _identifier(tree: Tree[Token], text: str) -> tuple[KeySource, str]:
    """(source, key) of `entity.key`; a lone name is an attribute (`status`, `run_name`)."""
    tokens = cast(list[Token], tree.children)
    if len(tokens) == 1:
        first = str(tokens[0])
        entity, _, key = first.partition(".")
        if not key:
            return "column", _attribute(first)
        key_token = Token("NAME", key)
    else:
        entity, key_token = str(tokens[0]), tokens[1]
    source = ENTITIES.get(entity.lower())
    if source is None:
        raise invalid(
            f"Invalid entity type '{entity}' in {text!r}: use metrics, params, tags or attributes (e.g. metrics.acc)"
        )
    key = _unquote(key_token)
    if not key:
        raise invalid(f"Invalid filter string {text!r}: {entity}. needs a key")
    return source, _attribute(key) if source == "column" else key


def _attribute(key: str) -> str:
    key = ATTRIBUTE_ALIASES.get(key, key)
    if key not in ATTRIBUTES:
        raise invalid(f"Invalid attribute key '{key}' specified. Valid keys are {sorted(ATTRIBUTES)}")
    return key


def _comparison(tree: Tree[Token], text: str) -> KeyCompare:
    identifier, *rest = tree.children
    source, key = _identifier(cast(Tree[Token], identifier), text)
    numeric = source == "latest" or (source == "column" and key in NUMERIC_ATTRIBUTES)
    name = f"{ENTITY_NAMES[source]}.{key}"
    negated = any(isinstance(part, Token) and part.type == "NOT" for part in rest)
    if tree.data == "compare":
        op_token, value_tree = rest
        op = {"==": "=", "<>": "!="}.get(str(op_token), str(op_token))
        if not numeric and op not in STRING_OPS:
            raise invalid(
                f"Invalid comparator '{op}' for {name} in {text!r}: strings compare with one of {', '.join(STRING_OPS)}"
            )
        value_token = cast(Tree[Token], value_tree).children[0]
        value: Any = _value(value_token, numeric, name, text)
        return KeyCompare(source, key, cast(KeyOp, op), value)
    if numeric:
        raise invalid(
            f"Invalid comparator for {name} in {text!r}: it compares with a number using one of {', '.join(NUMBER_OPS)}"
        )
    strings = [_string(part) for part in rest if isinstance(part, Tree)]
    if tree.data == "like":
        like = next(str(part) for part in rest if isinstance(part, Token) and part.type == "LIKE").upper()
        return KeyCompare(source, key, cast(KeyOp, f"NOT {like}" if negated else like), strings[0])
    return KeyCompare(source, key, "NOT IN" if negated else "IN", tuple(strings))


def _string(tree: Tree[Token]) -> str:
    return _unquote(cast(Token, tree.children[0]))


def _value(token: Token | Tree[Token], numeric: bool, name: str, text: str) -> float | str:
    if isinstance(token, Tree):  # a string
        if numeric:
            raise invalid(f"Invalid filter string {text!r}: {name} compares with a number, not a string")
        return _string(token)
    if not numeric:
        raise invalid(f"Invalid filter string {text!r}: {name} compares with a quoted string, got {token}")
    number = float(token)
    if not math.isfinite(number):
        raise invalid(f"Invalid filter string {text!r}: {name} compares with a finite number")
    return number
