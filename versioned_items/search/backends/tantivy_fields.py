"""How the tantivy engine stores each Haystack field: its tantivy field, the Whoosh field that
parses queries about it, and the conversion of its values both ways.

One :class:`FieldSpec` per Haystack field decides all three, so the index and the query parser
cannot disagree:

- **Text** is tokenized by analyzers registered under the app's own names (:data:`ANALYZERS`).
  The Whoosh field that parses a query word runs the *same* tantivy analyzer
  (:class:`TantivyAnalyzer`), so the terms a query looks up are the terms the index holds.
- **Exact values** (ids, ``vi_kind = "exact"``, token lists, facet fields) are ``raw`` terms,
  with a fast column for sorting and facets.
- **Dates** are 64-bit integers: Whoosh's own encoding, microseconds since 0001-01-01 UTC
  (``whoosh.util.times.datetime_to_long``). tantivy's date fields index to the second (an
  as-of query between two versions written in the same second would be wrong) and end at
  2262-04-11; the integers keep the microseconds and cover every ``datetime`` (years 1 to
  9999), so nothing is clamped and the Whoosh query tree's date ranges compile unchanged.
- **Stored-only strings** are stored bytes: a tantivy text field is always indexed.

Custom tokenizers live in the process, not in the index: :func:`register` must run on every
``tantivy.Index`` opened on such a schema, which the backend does whenever it opens one.
"""

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

import tantivy
from django.utils.encoding import force_str
from haystack.constants import DJANGO_CT, DJANGO_ID, ID
from haystack.exceptions import SearchBackendError
from haystack.fields import FacetField
from whoosh import fields as wf
from whoosh.analysis import Token, Tokenizer
from whoosh.util.times import datetime_to_long, long_to_datetime

from .whoosh import ContentTypeTokenizer

# Field kinds whose values are tokenized by one of the ANALYZERS (kind -> analyzer name).
TOKENIZED = {"text": "vi_stem", "path": "vi_path", "ngram": "vi_ngram", "edge_ngram": "vi_edge_ngram"}
# The n-grams of Haystack's NgramField (of the whole value) and EdgeNgramField (of each word's
# start), as Haystack's Whoosh backend makes them.
NGRAM_SIZES = {"ngram": (3, 15), "edge_ngram": (2, 15)}
# Field kinds indexed as whole terms (tantivy's "raw" tokenizer).
RAW = {"id", "exact", "tokens", "content_type"}
NUMERIC = {"int", "float", "bool", "date"}

# Bump when the mapping below changes what an index holds: older indexes then need a rebuild.
LAYOUT = 1


def _analyzer(tokenizer, *filters) -> tantivy.TextAnalyzer:
    builder = tantivy.TextAnalyzerBuilder(tokenizer)
    for f in filters:
        builder = builder.filter(f)
    return builder.build()


def _build_analyzers() -> dict[str, tantivy.TextAnalyzer]:
    return {
        # Words, lower-cased, English stems (Whoosh's StemmingAnalyzer, without its stop words).
        "vi_stem": _analyzer(
            tantivy.Tokenizer.simple(),
            tantivy.Filter.remove_long(40),
            tantivy.Filter.lowercase(),
            tantivy.Filter.stemmer("english"),
        ),
        # The words of a path: docs/Q1-report_v2.txt -> docs, q1, report, v2, txt.
        "vi_path": _analyzer(tantivy.Tokenizer.regex(r"[^\W_]+"), tantivy.Filter.lowercase()),
        "vi_ngram": _analyzer(tantivy.Tokenizer.ngram(*NGRAM_SIZES["ngram"]), tantivy.Filter.lowercase()),
        # Edge n-grams are made per word in Python (edge_grams): tantivy's edge n-grams are of the
        # whole value. This analyzer only serves snippets.
        "vi_edge_ngram": _analyzer(tantivy.Tokenizer.simple(), tantivy.Filter.lowercase()),
    }


# Built on first use (they are Rust objects; building them at import would be a side effect).
_analyzers: dict[str, tantivy.TextAnalyzer] = {}


def analyzer(name: str) -> tantivy.TextAnalyzer:
    """The registered analyzer ``name`` (one of ``TOKENIZED``'s values)."""
    if not _analyzers:
        _analyzers.update(_build_analyzers())
    return _analyzers[name]


def register(index: tantivy.Index) -> None:
    """Register the app's analyzers on ``index`` (needed in every process, on every open)."""
    sort_key = _analyzer(tantivy.Tokenizer.raw(), tantivy.Filter.lowercase())
    for name in TOKENIZED.values():
        index.register_tokenizer(name, analyzer(name))
        # A tokenized field's fast column (for sorting) holds the whole value, lower-cased.
        index.register_fast_field_tokenizer(name, sort_key)


@dataclass(frozen=True)
class FieldSpec:
    """How one Haystack field is indexed."""

    name: str
    # id, text, path, ngram, edge_ngram, exact, tokens, content_type, stored, int, float, bool, date
    kind: str
    stored: bool
    multivalued: bool = False
    fast: bool = False  # a column: sortable and facetable

    @property
    def searchable(self) -> bool:
        return self.kind != "stored"

    def add_to(self, builder: tantivy.SchemaBuilder) -> None:
        """Add this field to a tantivy schema."""
        name, stored, fast = self.name, self.stored, self.fast
        if self.kind in TOKENIZED:
            builder.add_text_field(name, stored=stored, fast=fast, tokenizer_name=TOKENIZED[self.kind])
        elif self.kind in RAW:
            builder.add_text_field(name, stored=stored, fast=fast, tokenizer_name="raw")
        elif self.kind == "stored":
            builder.add_bytes_field(name, stored=True, indexed=False)
        elif self.kind in ("int", "date"):
            builder.add_integer_field(name, stored=stored, indexed=True, fast=True)
        elif self.kind == "float":
            builder.add_float_field(name, stored=stored, indexed=True, fast=True)
        elif self.kind == "bool":
            builder.add_boolean_field(name, stored=stored, indexed=True, fast=True)
        else:
            raise ValueError(f"unknown field kind {self.kind!r} of field {name!r}")

    def whoosh_field(self) -> wf.FieldType:
        """The Whoosh field that parses query text about this field."""
        if self.kind in NGRAM_SIZES:
            return wf.TEXT(analyzer=NgramQueryAnalyzer(NGRAM_SIZES[self.kind][1]), phrase=False)
        if self.kind in TOKENIZED:
            return wf.TEXT(analyzer=TantivyAnalyzer(TOKENIZED[self.kind]), phrase=True)
        if self.kind == "content_type":
            field = wf.ID()
            field.analyzer = ContentTypeTokenizer()  # a query gives the type it names, lower-cased
            return field
        if self.kind in RAW:
            return wf.ID()
        if self.kind == "int":
            return wf.NUMERIC(int, bits=64, signed=True)
        if self.kind == "float":
            return wf.NUMERIC(float, bits=64)
        if self.kind == "bool":
            return wf.BOOLEAN()
        if self.kind == "date":
            return ExactDatetime()
        return wf.STORED()

    # --- values ---

    def to_tantivy(self, value):
        """A Haystack-prepared value as tantivy value(s); None when there is nothing to add."""
        return None if value is None else self.converter()(value)

    def converter(self):
        """The function :meth:`to_tantivy` applies to a value that is not None (chosen once per
        field: it runs for every field of every document written)."""
        one = _CONVERTERS.get(self.kind, _text)
        if self.multivalued:

            def many(value):
                items = value if isinstance(value, (list, tuple, set)) else [value]
                return [one(v) for v in items if v is not None] or None

            return many
        if self.kind == "content_type":
            return _content_type_terms
        if self.kind == "edge_ngram":
            return edge_grams
        return one

    def term_value(self, value):
        """One value of this field as tantivy compares it (query terms and bounds)."""
        return _CONVERTERS.get(self.kind, _text)(value)

    def from_tantivy(self, values: list):
        """The stored value(s) of this field as Python values (dates naive UTC, as Whoosh gives)."""
        if self.kind == "stored":
            values = [v.decode() for v in values]
        elif self.kind == "date":
            values = [long_to_datetime(int(v)) for v in values]
        if self.multivalued:
            return values
        return values[0] if values else None

    def from_column(self, key):
        """A fast column's value (a facet key) as a Python value."""
        if self.kind == "date":
            return long_to_datetime(int(key))
        if self.kind == "int":
            return int(key)
        if self.kind == "float":
            return float(key)
        if self.kind == "bool":
            return bool(key)
        return key


def _text(value) -> str:
    return value if type(value) is str else force_str(value)


def _date(value) -> int:
    return datetime_to_long(naive_utc(value))


def naive_utc(value) -> datetime:
    """A date or datetime as a naive UTC datetime (aware ones are converted; naive ones are
    taken to be UTC, as Haystack's Whoosh backend does)."""
    if not isinstance(value, datetime):
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        raise ValueError(f"{value!r} is not a date or a datetime")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _boolean(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "t", "1", "yes")
    return bool(value)


_WORDS = re.compile(r"\w+")


def edge_grams(value) -> tantivy.PreTokenizedString:
    """The value, tokenized into the starts of its words (2 to 15 characters, lower-cased)."""
    text = _text(value)
    low, high = NGRAM_SIZES["edge_ngram"]
    tokens = []
    for position, word in enumerate(_WORDS.finditer(text)):
        lowered = word[0].lower()
        for size in range(low, min(high, len(lowered)) + 1):
            tokens.append(tantivy.Token(lowered[:size], position, word.start(), word.start() + size))
    return tantivy.PreTokenizedString(text, tokens)


# kind -> the conversion of one value (the others are text).
_CONVERTERS = {
    "stored": lambda value: _text(value).encode(),
    "date": _date,
    "int": int,
    "float": float,
    "bool": _boolean,
}


def _content_type_terms(value) -> list[str] | None:
    """``text/plain; charset=x`` as stored (first) and searched: ``text/plain``, ``text``."""
    value = _text(value)
    if not value.strip():
        return None
    full = value.split(";", 1)[0].strip().lower()
    return list(dict.fromkeys([value, full, full.partition("/")[0]]))


def field_specs(fields: dict) -> tuple[str, dict[str, FieldSpec]]:
    """``(document field name, {index field name: FieldSpec})`` for Haystack's ``fields``
    (``UnifiedIndex.all_searchfields()``). Raises SearchBackendError when there are none."""
    specs = {
        ID: FieldSpec(ID, "id", stored=True, fast=True),  # sortable, as Whoosh's
        DJANGO_CT: FieldSpec(DJANGO_CT, "id", stored=True, fast=True),
        DJANGO_ID: FieldSpec(DJANGO_ID, "id", stored=True),
    }
    content_field = ""
    for field in fields.values():
        spec = _spec(field)
        specs[spec.name] = spec
        if field.document:
            content_field = spec.name
    if len(specs) == 3:
        raise SearchBackendError(
            "No fields were found in any search_indexes. Please correct this before attempting to search."
        )
    return content_field, specs


def _spec(field) -> FieldSpec:
    name, stored, many = field.index_fieldname, bool(field.stored), bool(field.is_multivalued)
    kind = getattr(field, "vi_kind", None)
    if kind is not None:  # the app's own field classes (search_indexes.py)
        return _app_spec(name, kind, stored, getattr(field, "vi_sortable", False))
    numeric = {"integer": "int", "float": "float", "boolean": "bool", "date": "date", "datetime": "date"}
    field_type = field.field_type
    if not field.indexed:
        return FieldSpec(name, numeric.get(field_type, "stored"), stored=True, multivalued=many)
    if field_type in numeric:
        return FieldSpec(name, numeric[field_type], stored=stored, multivalued=many, fast=True)
    if field_type in ("ngram", "edge_ngram"):
        return FieldSpec(name, field_type, stored=stored, multivalued=many)
    if many or isinstance(field, FacetField):
        # Haystack's Whoosh backend: KEYWORD for lists; facet fields hold exact values.
        return FieldSpec(name, "tokens" if many else "exact", stored=stored, multivalued=many, fast=True)
    # Haystack's Whoosh backend stores every text field and makes it sortable; a location is
    # text there too ("lat,lon"), with no geo search.
    return FieldSpec(name, "text", stored=True, fast=not field.document)


def _app_spec(name: str, kind: str, stored: bool, sortable: bool) -> FieldSpec:
    if kind == "content":
        return FieldSpec(name, "text", stored=stored)
    if kind == "exact":
        return FieldSpec(name, "exact", stored=stored, fast=True)
    if kind == "path":
        return FieldSpec(name, "path", stored=stored)
    if kind == "content_type":
        return FieldSpec(name, "content_type", stored=stored)
    if kind == "tokens":
        return FieldSpec(name, "tokens", stored=stored, multivalued=True, fast=True)
    if kind == "stored":
        return FieldSpec(name, "stored", stored=True)
    raise ValueError(f"unknown vi_kind {kind!r} of field {name!r}")


def tantivy_schema(specs: dict[str, FieldSpec]) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for spec in specs.values():
        spec.add_to(builder)
    return builder.build()


def whoosh_schema(specs: dict[str, FieldSpec], unsearchable=frozenset()) -> wf.Schema:
    """The Whoosh schema that parses query text for an index of these fields; the fields named
    in ``unsearchable`` are stored-only there, so a query on them is refused."""
    return wf.Schema(
        **{name: wf.STORED() if name in unsearchable else spec.whoosh_field() for name, spec in specs.items()}
    )


def fingerprint(specs: dict[str, FieldSpec]) -> str:
    """A digest of what an index of these fields holds: another one needs a rebuild."""
    data = json.dumps([LAYOUT] + [asdict(spec) for spec in sorted(specs.values(), key=lambda s: s.name)])
    return hashlib.sha256(data.encode()).hexdigest()[:16]


class ExactDatetime(wf.DATETIME):
    """Whoosh's DATETIME, with ranges that keep their ends exclusive when written so (``{a TO
    b}``; Whoosh makes every date range inclusive) and take dates to the microsecond (Whoosh's
    range parser fails on a full ``YYYYMMDDhhmmssuuuuuu``, as Haystack's gt/lt give them here).

    A partial date covers its span: ``[2025 TO 2026]`` is from the start of 2025 to the end of
    2026, ``{2025 TO}`` after the end of 2025.
    """

    def parse_range(self, fieldname, start, end, startexcl, endexcl, boost=1.0):
        from whoosh import query

        if start is None and end is None:
            return query.Every(fieldname, boost=boost)
        low = None if start is None else self._bound(start, ceil=startexcl)
        high = None if end is None else self._bound(end, ceil=not endexcl)
        return query.NumericRange(fieldname, low, high, startexcl, endexcl, boost=boost)

    def _bound(self, text: str, ceil: bool) -> int:
        at = self._parse_datestring(text)
        if not isinstance(at, datetime):
            at = at.ceil() if ceil else at.floor()
        return datetime_to_long(at)


class TantivyAnalyzer(Tokenizer):
    """A Whoosh analyzer that runs one of the registered tantivy analyzers, so that the words of a
    query that Whoosh's parser reads become the terms tantivy indexed.

    ``tokenize=False`` (Whoosh's parser asks so for wildcards and prefixes) gives the whole
    value, lower-cased, as every analyzer here lower-cases.
    """

    def __init__(self, name: str):
        self.name = name

    def __eq__(self, other):
        return type(other) is type(self) and other.name == self.name

    def __call__(
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        tokenize=True,
        mode="",
        **kwargs,
    ):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            parts = [(value.lower(), 0, 0, len(value))]
        else:
            parts = [
                (t.text, t.position, t.char_offset_from, t.char_offset_to)
                for t in analyzer(self.name).pre_tokenize(value).tokens
            ]
        for text, position, first, last in parts:
            token.text = text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = value[first:last]
            if positions:
                token.pos = start_pos + position
            if chars:
                token.startchar, token.endchar = start_char + first, start_char + last
            yield token


class NgramQueryAnalyzer(Tokenizer):
    """The words of a query on an n-gram field, lower-cased and cut to the longest n-gram: each
    is one indexed n-gram (Whoosh's n-gram analyzers do not split query words into n-grams)."""

    def __init__(self, longest: int):
        self.longest = longest

    def __eq__(self, other):
        return type(other) is type(self) and other.longest == self.longest

    def __call__(
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        tokenize=True,
        mode="",
        **kwargs,
    ):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        words = _WORDS.finditer(value) if tokenize else [re.match(r".*", value, re.DOTALL)]
        for position, word in enumerate(words):
            token.text = word[0].lower()[: self.longest]
            token.boost, token.stopped = 1.0, False
            if keeporiginal:
                token.original = word[0]
            if positions:
                token.pos = start_pos + position
            if chars:
                token.startchar, token.endchar = start_char + word.start(), start_char + word.end()
            yield token


# Characters with a meaning in tantivy's regular expressions.
_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$#&\-~])")


def regex_escape(text: str) -> str:
    return _REGEX_SPECIAL.sub(r"\\\1", text)
