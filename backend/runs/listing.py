"""Pages of runs: filtered and sorted in the database, walked with an opaque keyset cursor.

A page is the `limit` runs that sort after the cursor's (sort value, id), so runs added or removed
while someone pages never shift the others: each run that exists throughout is listed exactly once.
Blank values (a run without the sorted metric) sort last either way, then by id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import QueryableAttribute, Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from prunelab.core.errors import InvalidParameter
from prunelab.server.models import Run
from prunelab.server.runs.filters import METRIC_KEY, MetricColumns, clause, parse_filter

Order = Literal["asc", "desc"]
COLUMN_SORTS = ("created", "id", "name", "status")


@dataclass(frozen=True)
class Page:
    runs: list[Run]
    next_cursor: str | None
    total: int


@dataclass(frozen=True)
class _Position:
    value: Any
    run_id: int


def sort_value(sort: str, metrics: MetricColumns) -> ColumnElement[Any]:
    """What runs are ordered by (then by id): a column, or a final metric as the filter reads it."""
    columns: dict[str, ColumnElement[Any]] = {
        "created": Run.created_at,  # type: ignore[dict-item]
        "id": Run.id,  # type: ignore[dict-item]
        "name": Run.name,  # type: ignore[dict-item]
        "status": Run.status,  # type: ignore[dict-item]
    }
    if sort in columns:
        return columns[sort]
    if not METRIC_KEY.match(sort):
        raise InvalidParameter(
            ("sort",), f"sort must be one of {', '.join(COLUMN_SORTS)} or a metric key, e.g. test_accuracy"
        )
    return metrics.value(sort)


def list_page(session: Session, filter_text: str, sort: str, order: Order, limit: int, cursor: str | None) -> Page:
    """One page of the runs `filter_text` matches, in `order` of `sort`, after `cursor`; with how many match."""
    parsed = parse_filter(filter_text)
    metrics = MetricColumns()
    value = sort_value(sort, metrics)
    descending = order == "desc"
    fingerprint = _fingerprint(filter_text, sort, order)
    position = _decode(cursor, fingerprint, sort) if cursor else None
    matches = clause(parsed, metrics)
    ordered = value.desc() if descending else value.asc()
    by_id = Run.id.desc() if descending else Run.id.asc()
    # Columns are never NULL: no NULLS LAST for them, so that the (created_at, id) index serves the order.
    ordering = [ordered if sort in COLUMN_SORTS else ordered.nulls_last(), by_id]
    if parsed is None:
        # Unfiltered, the count is an index-only scan of its own, so the page stops after `limit` rows in
        # index order (created) or a top-N sort (a metric) instead of sorting every run.
        after = [] if position is None else [_after(value, Run.id, position, descending)]
        page_ids = (
            metrics.join(select(Run.id.label("id"), value.label("sort_value")))
            .where(*after)
            .order_by(*ordering)
            .limit(limit + 1)
            .subquery()
        )
        matching: ColumnElement[int] = select(func.count(Run.id)).scalar_subquery()
    else:
        # Filtered, the matches are counted on the way (a window over them), then the cursor applies: the
        # filter is evaluated once per run.
        counted = (
            metrics.join(select(Run.id.label("id"), value.label("sort_value"), func.count().over().label("matching")))
            .where(matches)
            .subquery()
        )
        after = [] if position is None else [_after(counted.c.sort_value, counted.c.id, position, descending)]
        page_value = counted.c.sort_value.desc() if descending else counted.c.sort_value.asc()
        page_ids = (
            select(counted)
            .where(*after)
            .order_by(
                page_value if sort in COLUMN_SORTS else page_value.nulls_last(),
                counted.c.id.desc() if descending else counted.c.id.asc(),
            )
            .limit(limit + 1)
            .subquery()
        )
        matching = page_ids.c.matching
    sorted_value = page_ids.c.sort_value.desc() if descending else page_ids.c.sort_value.asc()
    sorted_value = sorted_value if sort in COLUMN_SORTS else sorted_value.nulls_last()
    rows = session.execute(
        select(Run, page_ids.c.sort_value, matching.label("matching"))
        .join(page_ids, page_ids.c.id == Run.id)
        .options(selectinload(Run.artifacts))
        .order_by(sorted_value, by_id)
    ).all()
    # An empty page: no match at all, or nothing left after the cursor (runs deleted meanwhile).
    total = int(rows[0].matching) if rows else 0 if position is None else _count(session, metrics, matches)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode(fingerprint, _Position(_jsonable(last.sort_value), last.Run.id))
    return Page([row.Run for row in rows[:limit]], next_cursor, total)


def _count(session: Session, metrics: MetricColumns, condition: ColumnElement[bool]) -> int:
    """How many runs match, for a page past the last (the page's own statement returned no row to carry it)."""
    return int(session.scalar(metrics.join(select(func.count(Run.id))).where(condition)) or 0)


def _after(
    value: ColumnElement[Any],
    run_id: ColumnElement[int] | QueryableAttribute[int],
    position: _Position,
    descending: bool,
) -> ColumnElement[bool]:
    return after_position([(value, descending, True), (run_id, descending, False)], [position.value, position.run_id])


def after_position(
    keys: Sequence[tuple[ColumnElement[Any] | QueryableAttribute[Any], bool, bool]], position: Sequence[Any]
) -> ColumnElement[bool]:
    """The rows that sort after `position` in the order of `keys`: (value, descending, may be blank) each.

    Blanks sort last either way; the last key must tell every row apart (an id), so that a keyset page
    lists each row exactly once.
    """
    alternatives: list[ColumnElement[bool]] = []
    ties: list[ColumnElement[bool]] = []  # the row equals the position on every key so far
    for (value, descending, nullable), at in zip(keys, position, strict=True):
        if at is None:  # among the blanks, which come last: only a later key can move past it
            ties.append(value.is_(None))
            continue
        beyond = value < at if descending else value > at
        alternatives.append(and_(*ties, or_(beyond, value.is_(None)) if nullable else beyond))
        ties.append(value == at)
    return or_(*alternatives)


def ordering(keys: Sequence[tuple[ColumnElement[Any] | QueryableAttribute[Any], bool, bool]]) -> list[Any]:
    """ORDER BY terms for `keys` as `after_position` reads them (blanks last)."""
    terms = []
    for value, descending, nullable in keys:
        term = value.desc() if descending else value.asc()
        terms.append(term.nulls_last() if nullable else term)
    return terms


def _fingerprint(filter_text: str, sort: str, order: str) -> str:
    return hashlib.sha256(json.dumps([filter_text, sort, order]).encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _encode(fingerprint: str, position: _Position) -> str:
    return encode_cursor(fingerprint, position.value, position.run_id)


def encode_cursor(fingerprint: str, value: Any, run_id: int) -> str:
    """An opaque cursor: where a page ended (its last row's sort value or values, and id), for one query."""
    raw = json.dumps({"f": fingerprint, "v": value, "i": run_id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, Any, int] | None:
    """(query fingerprint, sort value, id) of a cursor `encode_cursor` gave out; None when it is not one."""
    try:
        fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        fingerprint, value, run_id = fields["f"], fields["v"], fields["i"]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(fingerprint, str) or not isinstance(run_id, int) or isinstance(run_id, bool):
        return None
    return fingerprint, value, run_id


def _decode(cursor: str, fingerprint: str, sort: str) -> _Position:
    refused = InvalidParameter(("cursor",), "cursor is not one this server gave out; start again without it")
    decoded = decode_cursor(cursor)
    if decoded is None:
        raise refused
    given_for, value, run_id = decoded
    if given_for != fingerprint:
        raise InvalidParameter(("cursor",), "cursor belongs to another filter or sort; start again without it")
    if sort == "created":
        try:
            value = datetime.fromisoformat(value)
        except (ValueError, TypeError):
            raise refused from None
    expected = {"created": datetime, "id": int, "name": str, "status": str}.get(sort, int | float | None)
    if not isinstance(value, expected):
        raise refused
    if (isinstance(value, datetime) and value.tzinfo is None) or (isinstance(value, str) and "\x00" in value):
        raise refused
    return _Position(value, run_id)
