"""The query language parses every string or explains why not (d2lkb.query)."""

import contextlib

import pytest

from d2lkb.query import And, Field, Not, Or, QueryError, TagTerm, Text, parse_query


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("#参数", TagTerm("参数")),
        ("#ML/Supervised", TagTerm("ml/supervised")),
        ("tag:calculus", TagTerm("calculus")),
        ("gradient", Text("gradient")),
        ("grad*", Text("grad", prefix=True)),
        ('"gradient descent"', Text("gradient descent", phrase=True)),
        ("a b", And((Text("a"), Text("b")))),
        ("a AND b", And((Text("a"), Text("b")))),
        ("a OR b c", Or((Text("a"), And((Text("b"), Text("c")))))),
        ("-a", Not(Text("a"))),
        ("NOT #x", Not(TagTerm("x"))),
        ("(a OR b) -c", And((Or((Text("a"), Text("b"))), Not(Text("c"))))),
        ("kind:cards", Field("kind", "card")),
        ("path:\"my notes/\"", Field("path", "my notes/")),
        ("status:refuted", Field("status", "refuted")),
        ("due:today", Field("due", "today")),
        ("due:3", Field("due", "3")),
        ("x-ray", Text("x-ray")),
    ],
)
def test_parses(query, expected):
    assert parse_query(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty query"),
        ("   ", "empty query"),
        ("(a", "unbalanced parenthesis"),
        ("a)", "unexpected ')'"),
        ('"open', "unterminated quote"),
        ("a OR", "OR needs something on its right"),
        ("OR a", "needs something on its left"),
        ("foo:bar", "unknown field foo:"),
        ("kind:zebra", "is not a kind"),
        ("status:great", "is not a status"),
        ("due:someday", "is not understood"),
        ("#2024", "not a valid tag"),
        ("()", "empty parentheses"),
        ("-", "no letters or digits"),
        ("NOT", "needs something to exclude"),
        ("(" * 100 + "a" + ")" * 100, "nests deeper"),
        ("x" * 3000, "too long"),
        ("a\x00b", "NUL"),
        ("path:", "needs a value"),
    ],
)
def test_bad_queries_explain_themselves(query, message):
    with pytest.raises(QueryError, match=None) as info:
        parse_query(query)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_hostile_strings_either_parse_or_raise_query_error():
    for query in ["'; DROP TABLE card; --", 'a" OR 1=1 --', "NEAR(a b)", "a*b", "^x", "title:x", "{a}",
                  "\\", "%_%", "#a/b/c", "🙂", "a:b:c", "col:umn"]:
        with contextlib.suppress(QueryError):
            parse_query(query)
