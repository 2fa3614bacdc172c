"""Parsing query text: Whoosh syntax, attribute fields, and readable errors."""

import pytest
from haystack import connections
from whoosh import query as wq

from versioned_items.exceptions import InvalidQuery
from versioned_items.search import query
from versioned_items.search.query import (
    SearchRequest,
    _correctable_terms,
    _one_edit,
    check_syntax,
    parse,
    whoosh_query,
)


@pytest.fixture(scope="module")
def schema():
    # The schema alone: the index itself need not exist.
    backend = connections["vi_latest"].get_backend()
    backend._build_schema()
    return backend.schema


@pytest.mark.parametrize("text", ["", "   ", "*"])
def test_empty_query_matches_everything(schema, text):
    assert parse(text, schema) == wq.Every()


def test_words_search_the_default_field(schema):
    q = parse("budget", schema)
    assert {t[0] for t in q.iter_all_terms()} == {"text"}


@pytest.mark.parametrize(
    "text, term",
    [
        ("color:red", ("attrs", "color=red")),
        ("Color:RED", ("attrs", "color=red")),
        ("dc.creator:Eve", ("attrs", "dc.creator=eve")),
        ('color:"dark red"', ("attrs", "color=dark red")),
        ("muser:alice", ("muser", "alice")),
        ("content_type:text", ("content_type", "text")),
    ],
)
def test_field_and_attribute_terms(schema, text, term):
    assert list(parse(text, schema).iter_all_terms()) == [term]


def test_attribute_wildcards(schema):
    assert parse("color:re*", schema) == wq.Prefix("attrs", "color=re")
    assert parse("color:*", schema) == wq.Prefix("attrs", "color=")


@pytest.mark.parametrize(
    "text, message",
    [
        ("a (b", "unclosed '('"),
        ("a b)", "')' without a matching '('"),
        ('"a b', "unclosed '\"'"),
        ("a AND", "ends with the operator AND"),
        ("OR a", "starts with the operator OR"),
        ("size:[1 TO", "never closes it"),
        ("a ] b", "never opened"),
        ("muser: x", "gives no value"),
        ("size:[x TO 5]", "size takes a whole number such as 1024, or a range such as [0 TO 1024]"),
        ("size:abc", "size takes a whole number such as 1024"),
        ("size:12.5", "'12.5' is not one"),
        ("size:>5", "'>5' is not one"),
        ("cluster:x", "cluster takes a whole number"),
        ("mtime:notadate", "mtime takes a date (UTC) such as 2025, 2025-03 or 2025-03-01"),
        ("mtime:2025-13-01", "'2025-13-01' is not one"),
        (
            "mtime:[bad TO 2020]",
            "or a range such as [2025-01-01 TO 2025-03-01T12:00]; '[bad TO 2020]' is not one",
        ),
        ("valid_until:yesterday", "valid_until takes a date"),
        ("serial:12", "the field 'serial' is stored with the results but cannot be searched"),
        ("content:budget", "words without a field name search the content"),
        ("color:[a TO b]", "cannot take a range"),
    ],
)
def test_malformed_queries_say_what_is_wrong(schema, text, message):
    with pytest.raises(InvalidQuery) as error:
        parse(text, schema)
    assert message in str(error.value)
    # Never a message of Whoosh's parsers ("invalid literal for int() with base 10").
    assert "literal" not in str(error.value) and "format" not in str(error.value)
    assert repr(text) in str(error.value)


def test_an_error_does_not_leak_into_the_next_parse(schema):
    with pytest.raises(InvalidQuery):
        parse("size:[x TO 5]", schema)
    assert parse("plain", schema) is not None
    check_syntax("plain words")


def test_filters_are_zero_score_conjuncts(schema):
    q = whoosh_query(SearchRequest(query="budget", under="docs", musers=("ann",)), schema)
    assert isinstance(q, wq.And)
    assert all(isinstance(part, wq.ConstantScoreQuery) and part.score == 0.0 for part in q.subqueries[1:])


def test_history_excludes_deleted_unless_asked(schema):
    live = wq.NumericRange("cluster", 0, 1)
    assert whoosh_query(SearchRequest(history=True), schema) == wq.And(
        [wq.Every(), wq.ConstantScoreQuery(live, 0.0)]
    )
    assert whoosh_query(SearchRequest(history=True, include_deleted=True), schema) == wq.Every()


# --- spelling suggestions --------------------------------------------------------------------


def test_only_typed_words_of_the_spelled_fields_are_corrected(schema):
    q = parse('budgets path:reprot NOT gone muser:ann "dark lamb" wild* color:red Q1-notes', schema)
    assert [(t.fieldname, t.text, t.startchar) for t in _correctable_terms(q)] == [
        ("text", "budget", 0),
        ("path", "reprot", 13),
    ]


def test_one_edit_away():
    edits = list(_one_edit("ab"))
    assert len(edits) == len(set(edits))
    assert {"b", "a", "ba", "xb", "abx", "xab"} <= set(edits) and "ab" not in edits
    assert all(len(edit) in (1, 2, 3) for edit in edits)


def test_iso_times_in_date_ranges_are_read(schema):
    compact = whoosh_query(SearchRequest(query="mtime:[2025-03-01T09:00 TO 2025-03-01 17:00:30Z]"), schema)
    assert compact == whoosh_query(SearchRequest(query="mtime:[202503010900 TO 20250301170030]"), schema)
    # the same length, so that the other words keep their places (spelling suggestions use them)
    assert len(query.compact_times("x mtime:[2025-03-01T09:00 TO 2026] y", schema)) == len(
        "x mtime:[2025-03-01T09:00 TO 2026] y"
    )
    # a time in plain words is left as typed
    assert query.compact_times("at 2025-03-01T09:00", schema) == "at 2025-03-01T09:00"


def test_a_comparison_on_a_date_field_is_refused_naming_the_query_as_typed(schema):
    # Before, the colon of the time made "2025-03-01T10" an attribute name: a search of nothing.
    with pytest.raises(InvalidQuery, match=r"query 'mtime:>2025-03-01T10:00' is not valid: mtime takes"):
        parse("mtime:>2025-03-01T10:00", schema)
