"""The runs filter language: what it parses to, and where it says a mistake is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from prunelab.core.errors import InvalidFilter
from prunelab.server.runs.filters import (
    All,
    Any_,
    CreatedCompare,
    FieldIs,
    IdCompare,
    MetricCompare,
    Not,
    Word,
    parse_filter,
)


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", None),
        ("   ", None),
        (
            "accuracy > 0.98 kind:polynomial tag:sweep",
            All((MetricCompare("accuracy", ">", 0.98), FieldIs("kind", "polynomial"), FieldIs("tag", "sweep"))),
        ),
        ("test_accuracy>=0.9", MetricCompare("test_accuracy", ">=", 0.9)),
        ("final_sparsity < 0.8", MetricCompare("final_sparsity", "<", 0.8)),
        ("loss<=-1e-3", MetricCompare("loss", "<=", -0.001)),
        ("layer_sparsity/dense_1 != 0", MetricCompare("layer_sparsity/dense_1", "!=", 0.0)),
        ('name:"my run"', FieldIs("name", "my run")),
        ('"and or"', Word("and or")),
        (r'"say \"hi\""', Word('say "hi"')),
        ("status:succeeded", FieldIs("status", "succeeded")),
        ("Owner:ana", FieldIs("owner", "ana")),
        ("id:12", IdCompare("=", 12)),
        ("id >= 3", IdCompare(">=", 3)),
        ("mnist", Word("mnist")),
        ("android orange notes", All((Word("android"), Word("orange"), Word("notes")))),  # keywords need a break
        ("a or b c", Any_((Word("a"), All((Word("b"), Word("c")))))),  # and binds tighter than or
        ("a AND b OR c", Any_((All((Word("a"), Word("b"))), Word("c")))),
        ("(a or b) c", All((Any_((Word("a"), Word("b"))), Word("c")))),
        ("not tag:dense", Not(FieldIs("tag", "dense"))),
        ("not (a or b)", Not(Any_((Word("a"), Word("b"))))),
        ("created<2026-11-01", CreatedCompare("<", day("2026-11-01"))),
        ("created>2026-11-01", CreatedCompare(">=", day("2026-11-02"))),  # after the day: from the next one
        ("created<=2026-11-01", CreatedCompare("<", day("2026-11-02"))),
        ("created:2026-11-01", All((CreatedCompare(">=", day("2026-11-01")), CreatedCompare("<", day("2026-11-02"))))),
        ('created>"2026-11-01 12:30"', CreatedCompare(">", day("2026-11-01T12:30"))),
        ("((((x))))", Word("x")),
    ],
)
def test_parses(text: str, parsed: object) -> None:
    assert parse_filter(text) == parsed


@pytest.mark.parametrize(
    ("text", "column", "says"),
    [
        ("accuracy >", 11, "found the end of the filter, expected"),
        ("accuracy > and", 12, "expected a number after accuracy >"),
        ("tag:", 5, "expected"),
        ("(a or b", 8, "expected ')'"),
        ("a or b)", 7, "found ')'"),
        ("kind:polynomial or", 19, "found the end of the filter"),
        ('name:"my run', 6, "never closed"),
        ("a !b", 3, "unexpected '!'"),
        ("colour:red", 1, "unknown field 'colour'"),
        ("tag:x status:sucess", 14, "unknown status 'sucess': one of queued, running"),
        ("kind:cubic", 6, "unknown schedule kind 'cubic'"),
        ("accuracy>abc", 10, "expected a number after accuracy >, found 'abc'"),
        ("accuracy > nan", 12, "expected a number"),
        ("status > 2", 8, "status takes ':'"),
        ("created>yesterday", 9, "expected a date like 2026-11-01"),
        ("id:x", 4, "expected a run id"),
        ("not " * 20 + "x", 81, "nested deeper than 16 levels"),
    ],
)
def test_mistakes_name_their_column(text: str, column: int, says: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        parse_filter(text)
    assert raised.value.column == column, raised.value.message
    assert raised.value.message.startswith(f"column {column}: ")
    assert says in raised.value.message, raised.value.message


def test_a_filter_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(InvalidFilter, match="longer than 500"):
        parse_filter("a " * 300)
