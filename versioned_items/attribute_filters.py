"""Attribute filter expressions, as used by listings.

An expression is a comma-separated list of terms; a version matches when it matches *every*
term (the terms are combined with AND):

``key``
    the version has an attribute ``key``;
``!key``
    the version has no attribute ``key``;
``key OP value``
    the version has an attribute ``key`` whose value compares to ``value`` with OP, one of
    ``=  !=  <  <=  >  >=``. When ``value`` is a number, the comparison is numeric and
    attributes whose value is not a number never match; otherwise values compare as strings,
    in code point order. A value containing a comma or surrounding spaces is written in
    double quotes: ``title="a, b"`` (``\\"`` for a quote inside).

Keys belong to the listing's attribute domain (``""`` by default). An expression has at most
``FILTER_MAX_TERMS`` terms: each is a subquery, and SQLite refuses a few hundred of them
("Expression tree is too large").
"""

import math
import re
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q

from .conf import app_settings
from .exceptions import InvalidFilter
from .validation import clean_filter_text

OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
_KEY = r'[^\s=!<>,"]+'
_COMPARISON = re.compile(rf"^({_KEY})\s*(<=|>=|!=|=|<|>)\s*(.*)$", re.S)
_NAME = re.compile(rf"^{_KEY}$")


_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def as_number(value: str) -> float | None:
    """``value`` as a float when it is a plain decimal number (``12``, ``-1.5``, ``2e3``), else None."""
    if not isinstance(value, str) or not _NUMBER.match(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Term:
    """One term of a filter expression. ``op`` is ``"exists"``, ``"missing"`` or an operator."""

    key: str
    op: str
    value: str = ""

    @property
    def number(self) -> float | None:
        return as_number(self.value) if self.op in OPERATORS else None


def _split_terms(expression: str) -> list[str]:
    """Split on commas that are not inside double quotes."""
    terms, current, quoted, escaped = [], [], False, False
    for char in expression:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "," and not quoted:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise InvalidFilter(f"filter {expression!r} has an unclosed double quote")
    terms.append("".join(current))
    return terms


def _unquote(value: str, expression: str) -> str:
    value = value.strip()
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"'):
            raise InvalidFilter(f"filter {expression!r}: text after the closing quote in {value!r}")
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    if '"' in value:
        raise InvalidFilter(f"filter {expression!r}: a quote inside the unquoted value {value!r}")
    return value


def parse_filter(expression: str | None) -> list[Term]:
    """Parse a filter expression into terms (an empty list for None or blank).

    Raises :class:`InvalidFilter` naming the term that could not be read, or the limit when
    there are more than ``FILTER_MAX_TERMS`` terms.
    """
    if expression is None:
        return []
    if not isinstance(expression, str):
        raise InvalidFilter(f"filter must be a string, not {type(expression).__name__}")
    if not expression.strip():
        return []
    clean_filter_text(expression, InvalidFilter)
    raws, limit = _split_terms(expression), app_settings.FILTER_MAX_TERMS
    if len(raws) > limit:
        raise InvalidFilter(
            f"the filter has {len(raws):,} terms; the limit is {limit:,} "
            "(setting FILTER_MAX_TERMS): filter on fewer attributes at once"
        )
    terms = []
    for raw in raws:
        text = raw.strip()
        if not text:
            raise InvalidFilter(
                f"filter {expression!r} has an empty term; terms are 'key', '!key' or 'key OP value', "
                "separated by commas"
            )
        if text.startswith("!") and _NAME.match(text[1:].strip()):
            terms.append(Term(text[1:].strip(), "missing"))
        elif _NAME.match(text):
            terms.append(Term(text, "exists"))
        elif match := _COMPARISON.match(text):
            key, op, value = match.groups()
            if value.startswith(("=", "<", ">")):
                raise InvalidFilter(
                    f"filter term {text!r}: unknown operator; use one of {', '.join(OPERATORS)}"
                )
            terms.append(Term(key, op, _unquote(value, expression)))
        else:
            raise InvalidFilter(
                f"filter term {text!r} is not 'key', '!key' or 'key OP value' "
                f"with OP one of {', '.join(OPERATORS)}"
            )
    return terms


_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def term_q(term: Term, domain: str = "", version_ref: str = "serial") -> Q:
    """A Q on Version (or on a model with a version reference ``version_ref``) for one term."""
    from .models import Attribute

    attributes = Attribute.objects.filter(version=OuterRef(version_ref), domain=domain, key=term.key)
    if term.op == "exists":
        return Q(Exists(attributes))
    if term.op == "missing":
        return ~Q(Exists(attributes))
    number = term.number
    field, operand = ("value_number", number) if number is not None else ("value", term.value)
    if term.op == "!=":
        attributes = attributes.exclude(**{field: operand})
        if number is not None:
            attributes = attributes.filter(value_number__isnull=False)
    else:
        attributes = attributes.filter(**{f"{field}__{_LOOKUPS[term.op]}": operand})
    return Q(Exists(attributes))


def filter_q(expression: str | list[Term] | None, domain: str = "", version_ref: str = "serial") -> Q:
    """A Q matching versions that satisfy every term of ``expression``.

    Raises :class:`InvalidFilter`.
    """
    terms = parse_filter(expression) if not isinstance(expression, list) else expression
    q = Q()
    for term in terms:
        q &= term_q(term, domain, version_ref)
    return q
