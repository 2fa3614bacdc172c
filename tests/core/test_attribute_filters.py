import pytest

from versioned_items.attribute_filters import Term, as_number, parse_filter
from versioned_items.exceptions import InvalidFilter


def test_terms():
    assert parse_filter('a, !b, c=1, d != x y, e<=2.5, f>=-3, g<z, h>"q, r"') == [
        Term("a", "exists"),
        Term("b", "missing"),
        Term("c", "=", "1"),
        Term("d", "!=", "x y"),
        Term("e", "<=", "2.5"),
        Term("f", ">=", "-3"),
        Term("g", "<", "z"),
        Term("h", ">", "q, r"),
    ]


def test_blank_expression_is_no_filter():
    assert parse_filter(None) == [] and parse_filter("  ") == []


def test_empty_value_is_allowed():
    assert parse_filter("k=") == [Term("k", "=", "")]


@pytest.mark.parametrize(
    "expression, message",
    [
        ("a,,b", "empty term"),
        ("a,", "empty term"),
        ("a==1", "unknown operator"),
        ("a=>1", "unknown operator"),
        ("=1", "not 'key'"),
        ("a b", "not 'key'"),
        ('a="x', "unclosed"),
        ('a="x"y', "after the closing quote"),
        ("a=x\x00", "control"),
        ("!", "not 'key'"),
    ],
)
def test_malformed_expressions_name_the_problem(expression, message):
    with pytest.raises(InvalidFilter, match=message):
        parse_filter(expression)


def test_numbers():
    assert as_number("10") == 10 and as_number("-1.5") == -1.5 and as_number("2e3") == 2000
    assert as_number("nan") is None and as_number("inf") is None and as_number("10a") is None
    assert Term("k", "<", "9").number == 9 and Term("k", "<", "x").number is None
