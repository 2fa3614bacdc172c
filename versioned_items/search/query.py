"""Running a search request: compiled to a Whoosh query on the app's engine, or expressed with
Haystack's ``SearchQuerySet`` on any other backend.

Query text is Whoosh's syntax (``AND``/``OR``/``NOT``, ``"phrases"``, ``field:value``,
``wild*``, ``[a TO b]``), searched in path, name, content and attributes by default. A field
name that is not a document field is an attribute: ``color:red``, ``dc.creator:alice``,
``color:re*``.
"""

import bisect
import heapq
import itertools
import re
import string
import threading
import weakref
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from whoosh import fields as wf
from whoosh import query as wq
from whoosh import sorting
from whoosh.highlight import HtmlFormatter
from whoosh.matching import ListMatcher, NullMatcher, ReadTooFar
from whoosh.matching.wrappers import FilterMatcher
from whoosh.qparser import FieldsPlugin, PrefixPlugin, QueryParser, WildcardPlugin, syntax
from whoosh.query.wrappers import WrappingQuery
from whoosh.reading import TermNotFound
from whoosh.searching import Searcher
from whoosh.support.levenshtein import distance

from versioned_items.conf import app_settings
from versioned_items.exceptions import InvalidQuery
from versioned_items.models import Cluster

from .search_indexes import OPEN_END, PATH_WORDS

# Searched by query words that name no field: content, path words and attributes in one field,
# so that a query costs what it costs on raw Whoosh.
DEFAULT_FIELD = "text"
# Sort keys of the API and the index fields they sort on.
SORT_FIELDS = {"mtime": "mtime", "path": "path_exact", "size": "size"}
FACET_FIELDS = {"muser": "muser", "content_type": "content_type_exact", "cluster": "cluster"}
OPERATORS = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}
# A search with fewer matches than this gets a spelling suggestion unless told otherwise.
FEW_HITS = 5


@dataclass(frozen=True)
class SearchRequest:
    """A checked search request (see :func:`versioned_items.search.api.search`)."""

    query: str = ""
    history: bool = False
    as_of: datetime | None = None
    include_deleted: bool = False
    cluster: int | None = None
    under: str | None = None
    content_type: str | None = None
    musers: tuple[str, ...] = ()
    mtime_range: tuple[datetime | None, datetime | None] = (None, None)
    size_range: tuple[int | None, int | None] = (None, None)
    attributes: tuple[tuple[str, str | None], ...] = ()
    sort: str = "relevance"
    page: int = 1
    page_size: int = 20
    highlight: bool = True
    facets: tuple[str, ...] = ()  # attribute names offered as facets, when facets are wanted
    want_facets: bool = False
    suggest: bool | None = None  # spelling suggestion: always, never, or (None) on few hits
    # The paths below which the searching user may read (grants.readable_paths); None: all.
    readable: tuple[str, ...] | None = None


@dataclass
class RawHit:
    fields: dict
    score: float | None
    highlights: dict[str, str] = field(default_factory=dict)


@dataclass
class Work:
    """What a search cost, counted where it is bounded (tests and benchmarks read it):

    - ``terms_scanned``: index terms read to expand wildcard, prefix and range terms;
    - ``terms_expanded``: index terms those terms matched (and were searched for);
    - ``suggestion_candidates``: candidates the spelling suggestion tried (one-edit variants
      looked up, index terms compared, matches checked for a live document);
    - ``suggestion_checks``: of those, and of the query's words, the ones looked for in a
      live (and, for a user, readable) document, one query each;
    - ``facet_values``: attribute values counted as facets (one query each over the matches);
    - ``readable_postings``: posting lists read to find the documents the user may read
      (:class:`Readable`; none when the reader kept them from an earlier search).
    """

    terms_scanned: int = 0
    terms_expanded: int = 0
    suggestion_candidates: int = 0
    suggestion_checks: int = 0
    facet_values: int = 0
    readable_postings: int = 0

    def spend_suggestion(self) -> bool:
        """Count one suggestion candidate; False once ``SUGGEST_BUDGET`` is spent."""
        if self.suggestion_candidates >= app_settings.SUGGEST_BUDGET:
            return False
        self.suggestion_candidates += 1
        return True


@dataclass
class RawResults:
    hits: list[RawHit]
    total: int
    facets: dict[str, Any]
    suggestion: str | None = None
    work: Work = field(default_factory=Work)


# --- limits ----------------------------------------------------------------------------------


def check_size(text: str) -> None:
    """Raise InvalidQuery when ``text`` is longer than ``SEARCH_MAX_QUERY_CHARS`` characters or
    has more than ``SEARCH_MAX_QUERY_WORDS`` words (operators and parentheses not counted)."""
    limit = app_settings.SEARCH_MAX_QUERY_CHARS
    if len(text) > limit:
        raise InvalidQuery(
            f"the query has {len(text):,} characters; the limit is {limit:,} "
            "(setting SEARCH_MAX_QUERY_CHARS): shorten it"
        )
    limit = app_settings.SEARCH_MAX_QUERY_WORDS
    words = [w for w in text.replace("(", " ").replace(")", " ").split() if w not in OPERATORS]
    if len(words) > limit:
        raise InvalidQuery(
            f"the query has {len(words):,} words; the limit is {limit:,} "
            "(setting SEARCH_MAX_QUERY_WORDS): search for fewer words at once"
        )


class ExpandedTerms(wq.MultiTerm):
    """A wildcard, prefix or range term with the index terms it matches already found (see
    :func:`bound_expansions`), so that searching and highlighting do not expand it again."""

    def __init__(self, original: wq.MultiTerm, btexts: list[bytes]):
        self.original = original
        self.fieldname = original.fieldname
        self.text = getattr(original, "text", "")
        self.boost = original.boost
        self.constantscore = original.constantscore
        self.startchar = getattr(original, "startchar", None)
        self.endchar = getattr(original, "endchar", None)
        self.btexts = btexts

    def __repr__(self) -> str:
        return f"ExpandedTerms({self.original!r}, {len(self.btexts)} terms)"

    def __unicode__(self) -> str:
        return str(self.original)

    __str__ = __unicode__

    def _btexts(self, ixreader):
        return iter(self.btexts)


class TermSet(ExpandedTerms):
    """The terms ``texts`` of the field ``fieldname`` as one node: Whoosh searches it as an Or
    of the terms, the tantivy compiler as one set of terms (it compiles a node whose terms are
    listed so), which costs it about one term whatever their number."""

    def __init__(self, fieldname: str, texts):
        self.original = None
        self.fieldname = fieldname
        self.text = ""
        self.boost = 1.0
        self.constantscore = True
        self.startchar = self.endchar = None
        self.btexts = list(texts)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and (self.fieldname, self.btexts) == (other.fieldname, other.btexts)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.fieldname, tuple(self.btexts)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fieldname!r}, {len(self.btexts)} terms)"

    def __unicode__(self) -> str:
        return f"{self.fieldname}:({' OR '.join(self.btexts)})"

    __str__ = __unicode__


class _CountingReader:
    """A reader whose term listings count what they read into ``work.terms_scanned`` and stop
    with InvalidQuery past ``SEARCH_MAX_TERMS_SCANNED`` for one term (``label``)."""

    def __init__(self, reader, work: Work, label: str):
        self._reader, self._work, self._label = reader, work, label
        self._limit = app_settings.SEARCH_MAX_TERMS_SCANNED

    def __getattr__(self, name: str):
        return getattr(self._reader, name)

    def _counted(self, terms):
        for scanned, term in enumerate(terms, 1):
            if scanned > self._limit:
                raise InvalidQuery(
                    f"{self._label} needs more than {self._limit:,} words of the index to be read "
                    "(setting SEARCH_MAX_TERMS_SCANNED); start it with a few letters, as in 'rep*' or 're*t'"
                )
            self._work.terms_scanned += 1
            yield term

    def lexicon(self, fieldname):
        return self._counted(self._reader.lexicon(fieldname))

    def expand_prefix(self, fieldname, prefix):
        return self._counted(self._reader.expand_prefix(fieldname, prefix))

    def terms_from(self, fieldname, prefix):
        return self._counted(self._reader.terms_from(fieldname, prefix))


def bound_expansions(q: wq.Query, reader, work: Work) -> wq.Query:
    """``q`` with each wildcard, prefix and range term replaced by the index terms it matches.

    Raises InvalidQuery when one such term matches more than ``SEARCH_MAX_EXPANSION`` index
    terms, or needs more than ``SEARCH_MAX_TERMS_SCANNED`` read to find its matches: a
    leading wildcard (``*a*``) reads the whole vocabulary of its field, and every match
    costs a posting list.
    """
    if isinstance(q, wq.Prefix) and not q.text:
        return q  # "field:*": Whoosh searches it as Every, without expanding
    if not isinstance(q, wq.MultiTerm) or isinstance(q, ExpandedTerms):
        return q.apply(lambda child: bound_expansions(child, reader, work))
    label = f"the term {_typed(q)!r}"
    limit = app_settings.SEARCH_MAX_EXPANSION
    matches = []
    for btext in q._btexts(_CountingReader(reader, work, label)):
        if len(matches) == limit:
            raise InvalidQuery(
                f"{label} matches more than {limit:,} words of the index (setting "
                "SEARCH_MAX_EXPANSION); make it more specific, as in 'report*' "
                "rather than 're*'"
            )
        matches.append(btext)
    work.terms_expanded += len(matches)
    return ExpandedTerms(q, matches)


def _typed(q: wq.MultiTerm) -> str:
    """A wildcard, prefix or range term as the user would write it (``color:re*`` for the
    attribute term ``color=re*``)."""
    if isinstance(q, wq.TermRange):
        return f"{q.fieldname}:[{q.start or ''} TO {q.end or ''}]"
    text = q.text + ("*" if isinstance(q, wq.Prefix) else "")
    if q.fieldname == "attrs":
        return text.replace("=", ":", 1)
    return text if q.fieldname == DEFAULT_FIELD else f"{q.fieldname}:{text}"


# --- parsing query text ----------------------------------------------------------------------


def check_syntax(text: str) -> None:
    """Raise InvalidQuery for what Whoosh would silently misread: unbalanced parentheses,
    quotes or range brackets, a dangling operator, a field with no value."""
    depth, quote, brackets = 0, None, []
    for position, char in enumerate(text, 1):
        if quote is not None:
            if char == '"':
                quote = None
            continue
        if char == '"':
            quote = position
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InvalidQuery(f"query {text!r} has a ')' without a matching '(' at character {position}")
        elif char in "[{":
            brackets.append((char, position))
        elif char in "]}":
            if not brackets:
                raise InvalidQuery(
                    f"query {text!r} closes a range with {char!r} at character {position} "
                    "that was never opened"
                )
            brackets.pop()
    if quote is not None:
        raise InvalidQuery(f"query {text!r} has an unclosed '\"' at character {quote}")
    if depth > 0:
        raise InvalidQuery(f"query {text!r} has {depth} unclosed '('")
    if brackets:
        char, position = brackets[-1]
        raise InvalidQuery(
            f"query {text!r} opens a range with {char!r} at character {position} but never closes it; "
            "write [start TO end]"
        )
    words = text.replace("(", " ").replace(")", " ").split()
    if words and words[-1] in OPERATORS:
        raise InvalidQuery(f"query {text!r} ends with the operator {words[-1]}; add a term after it")
    if words and words[0] in OPERATORS - {"NOT"}:
        raise InvalidQuery(f"query {text!r} starts with the operator {words[0]}; add a term before it")
    empty = re.search(r'(?:^|[\s(])([^\s:()"]+):(?=$|[\s)])', text)
    if empty:
        raise InvalidQuery(
            f"query {text!r} names the field {empty.group(1)!r} but gives no value after the ':'"
        )


class AttributeFieldsPlugin(FieldsPlugin):
    """Field names may contain dots, and a name that is not a document field is an attribute:
    ``color:red`` searches the term ``color=red`` of the ``attrs`` field."""

    def __init__(self):
        super().__init__(expr=r"(?P<text>[^\s:()\"'\[\]{}*?]+):", remove_unknown=False)

    def taggers(self, parser):
        # Before the wildcard tagger, which would take "color:re*" for one word.
        return [(self.FieldnameTagger(self.expr), -1)]

    def filters(self, parser):
        return super().filters(parser) + [(self.to_attributes, 110)]

    def to_attributes(self, parser, group):
        for index, node in enumerate(group):
            if isinstance(node, syntax.GroupNode):
                self.to_attributes(parser, node)
            elif node.has_fieldname and node.fieldname and node.fieldname not in parser.schema:
                group[index] = self._attribute_node(node)
            elif node.has_fieldname and node.fieldname:
                check_field_value(node.fieldname, parser.schema[node.fieldname], node)
        return group

    @staticmethod
    def _attribute_node(node):
        name = node.fieldname.lower()
        if isinstance(node, syntax.RangeNode):
            raise InvalidQuery(f"attribute {node.fieldname!r} cannot take a range; give a value")
        text = getattr(node, "text", None)
        if text is None:
            raise InvalidQuery(f"attribute {node.fieldname!r} needs a plain value")
        if isinstance(node, PrefixPlugin.PrefixNode):
            text += "*"
        term = f"{name}={text.lower()}"
        wild = any(c in text for c in "*?")
        new = WildcardPlugin.WildcardNode(term) if wild else syntax.WordNode(term)
        new.set_fieldname("attrs", override=True)
        new.startchar, new.endchar = node.startchar, node.endchar
        return new


# What a query may give the typed fields, for the messages of a value they cannot read.
_ACCEPTED = {
    wf.DATETIME: (
        "a date (UTC) such as 2025, 2025-03 or 2025-03-01, to the minute as 202503011430 "
        "or 2025-03-01T14:30, or a range such as [2025-01-01 TO 2025-03-01T12:00]"
    ),
    wf.NUMERIC: "a whole number such as 1024, or a range such as [0 TO 1024] (either end may be left out)",
    wf.BOOLEAN: "true or false",
}


def check_field_value(name: str, schema_field, node) -> None:
    """Raise InvalidQuery, saying what the field accepts, when ``node`` (a word or a range
    given to the field ``name``) is a value the field cannot read, or the field is not
    searchable. Whoosh's own messages are its parsers' ("invalid literal for int()")."""
    if not schema_field.indexed:
        raise InvalidQuery(
            f"the field {name!r} is stored with the results but cannot be searched; "
            "words without a field name search the content, path, name and attributes"
        )
    is_range = isinstance(node, syntax.RangeNode)
    if not schema_field.self_parsing() or (not is_range and getattr(node, "text", None) is None):
        return
    if not _reads(name, schema_field, node):
        value = f"[{node.start or ''} TO {node.end or ''}]" if is_range else node.text
        accepted = next(
            (text for kind, text in _ACCEPTED.items() if isinstance(schema_field, kind)), "another value"
        )
        raise InvalidQuery(f"{name} takes {accepted}; {value!r} is not one")


def _reads(name: str, schema_field, node) -> bool:
    """Whether the typed field ``schema_field`` can read the word or range ``node``."""
    try:
        if isinstance(node, syntax.RangeNode):
            q = schema_field.parse_range(name, node.start, node.end, node.startexcl, node.endexcl)
        else:
            q = schema_field.parse_query(name, node.text)
    except Exception:  # the field parsers raise ValueError, QueryParserError, OverflowError...
        return False
    return getattr(q, "error", None) is None


# A date field's clause: "mtime:" and its value, a range in brackets or one word (with < or >).
_DATE_CLAUSE = r"(?<![^\s(]){field}:(?:[\[{{][^\]}}]*[\]}}]|\S+)"
# An ISO 8601 time to the minute or second, UTC (a "Z" or +00:00 may follow).
_ISO_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:Z|[+-]00:?00)?")


def compact_times(text: str, schema) -> str:
    """``text`` with the ISO times given to date fields (``mtime:>2025-03-01T14:30``,
    ``mtime:[2025-03-01T09:00 TO 2025-03-01 17:00:30]``) written as Whoosh reads them
    (``202503011430``), padded with spaces to the same length, so that the places of the
    other words in the text (which spelling suggestions use) do not move. Whoosh's parser
    would take the colon of a time for a field name and search something else."""
    names = [name for name, field in schema.items() if isinstance(field, wf.DATETIME)]
    if not names or ":" not in text:
        return text

    def compact(match: re.Match) -> str:
        written = "".join(part for part in match.groups() if part)
        return written + " " * (len(match.group(0)) - len(written))

    clause = re.compile("|".join(_DATE_CLAUSE.format(field=re.escape(name)) for name in names))
    return clause.sub(lambda found: _ISO_TIME.sub(compact, found.group(0)), text)


def parse(text: str, schema) -> wq.Query:
    """The Whoosh query for ``text``. Raises InvalidQuery with a readable message."""
    if not text.strip() or text.strip() == "*":
        return wq.Every()
    typed, text = text, compact_times(text, schema)
    check_syntax(text)
    parser = _parser(schema)
    # Whoosh records some errors on its shared NullQuery object: clear what a previous parse left.
    vars(wq.NullQuery).pop("error", None)
    try:
        parsed = parser.parse(text)
    except InvalidQuery as error:
        raise InvalidQuery(f"query {typed!r} is not valid: {error}") from None
    except Exception as error:  # Whoosh raises bare Exceptions; check_field_value reads values first
        raise InvalidQuery(
            f"query {typed!r} could not be read ({error}); see the query syntax in the docs"
        ) from None
    errors = list(_errors(parsed))
    vars(wq.NullQuery).pop("error", None)
    if errors:
        raise InvalidQuery(
            f"query {typed!r} could not be read ({errors[0]}); see the query syntax in the docs"
        )
    return parsed


_parsers: dict[int, tuple] = {}


def _parser(schema) -> QueryParser:
    # Building a parser costs more than parsing: one per schema, reused.
    cached = _parsers.get(id(schema))
    if cached is None or cached[0] is not schema:
        parser = QueryParser(DEFAULT_FIELD, schema)
        parser.remove_plugin_class(FieldsPlugin)
        parser.add_plugin(AttributeFieldsPlugin())
        cached = _parsers[id(schema)] = (schema, parser)
    return cached[1]


def _errors(q):
    if getattr(q, "error", None):
        yield q.error
    for child in q.children():
        yield from _errors(child)


# --- the Whoosh engine -----------------------------------------------------------------------


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def whoosh_query(
    request: SearchRequest,
    schema,
    *,
    readable_terms: int | None = None,
    work: Work | None = None,
    parsed: wq.Query | None = None,
    live_filter: bool = True,
) -> wq.Query:
    """The whole request as one Whoosh query: the parsed text, And-ed with zero-score filters.

    ``readable_terms``: most readable paths written as terms (default :data:`READABLE_TERMS`;
    see :func:`readable_filter`); an engine that merges many terms cheaply (tantivy) passes a
    larger number, so that its compiler never meets :class:`Readable`. ``work`` counts what
    the grant filter reads. ``parsed``: the text as :func:`parse` gave it, when the caller
    has it already. ``live_filter=False`` leaves out the filter that keeps a history search
    to the live clusters, for a caller that masks the delete markers instead
    (:func:`deleted_mask`)."""
    q = parse(request.query, schema) if parsed is None else parsed
    if request.readable == ():
        return wq.NullQuery  # the user may read nothing
    filters = []
    if request.readable is not None:
        filters.append(readable_filter(request.readable, readable_terms, work))
    if request.under:
        filters.append(wq.Term("ancestors", request.under))
    if request.content_type:
        filters.append(wq.Term("content_type", request.content_type.lower()))
    if request.musers:
        filters.append(wq.Or([wq.Term("muser", m) for m in request.musers]))
    start, end = request.mtime_range
    if start or end:
        filters.append(wq.DateRange("mtime", start and _naive(start), end and _naive(end), endexcl=True))
    low, high = request.size_range
    if low is not None or high is not None:
        filters.append(wq.NumericRange("size", low, high))
    for name, value in request.attributes:
        term = name.lower() if value is None else f"{name}={value}".lower()
        filters.append(wq.Term("attrs", term))
    if request.cluster is not None:
        filters.append(wq.NumericRange("cluster", request.cluster, request.cluster))
    elif live_filter and deleted_mask(request) is not None:
        # The live clusters as a range, not ``AndNot`` the deleted one: Whoosh's AndNot matcher
        # keeps excluded documents when its left side And-s a union (the readable filter).
        filters.append(wq.NumericRange("cluster", int(Cluster.NORMAL), int(Cluster.HISTORY)))
    if filters:
        q = wq.And([q] + [_unscored(f) for f in filters])
    if request.as_of:
        q = ValidAt(q, _naive(request.as_of))
    return q


def deleted_mask(request: SearchRequest) -> wq.Query | None:
    """The delete markers, which a history search leaves out unless asked for them or for one
    cluster; None when there is nothing to leave out. Whoosh's ``mask=`` reads only their
    documents, where the live clusters as an unscored filter read the ids of the whole
    history for every query (77% of a history search's time)."""
    if request.cluster is None and request.history and not request.include_deleted:
        return wq.NumericRange("cluster", int(Cluster.DELETED), int(Cluster.DELETED))
    return None


def _unscored(f: wq.Query) -> wq.Query:
    """``f`` scoring nothing, so that a filter leaves the text's scores alone. Readable scores
    nothing already: ConstantScoreQuery would copy its sorted documents into a list that it
    steps through one by one."""
    return f if isinstance(f, Readable) else wq.ConstantScoreQuery(f, 0.0)


def readable_filter(
    readable: tuple[str, ...], readable_terms: int | None = None, work: Work | None = None
) -> wq.Query:
    """The documents at or below one of the ``readable`` paths. Up to :data:`READABLE_TERMS`
    paths (``readable_terms`` overrides the bound), one term per path on the indexed ancestor
    paths and one on the exact path (a grant on an item covers the item); beyond,
    :class:`Readable`, the same documents found once per segment reader and kept. The index
    holds no grant, so a change of grants needs no reindexing. ``work`` counts what finding
    them cost (:attr:`Work.readable_postings`)."""
    if not readable:
        return wq.NullQuery
    if len(readable) > (READABLE_TERMS if readable_terms is None else readable_terms):
        return Readable(readable, work)
    return wq.Or([TermSet(name, readable) for name in READABLE_FIELDS])


#: Most readable paths :func:`readable_filter` turns into terms on the Whoosh engine: none, since
#: the kept documents cost less even for one path (one readable folder of 50 items, the grants
#: benchmark's queries: 1.39 ms a search, 1.86 ms as terms, 2.15 ms for a superuser). Read at
#: call time, so tests may change it.
READABLE_TERMS = 0
#: The fields whose terms name the documents at or below a path: its descendants have it among
#: their ancestors, an item has it as its path.
READABLE_FIELDS = ("ancestors", "path_exact")
#: Grant sets whose readable documents one reader keeps; the least recently used go first.
READABLE_KEPT = 32


class Readable(wq.Query):
    """The documents at or below one of ``readable`` (sorted paths, none below another), as a
    query that scores nothing.

    The documents are found from the posting lists of each path's :data:`READABLE_FIELDS`
    terms (two lookups per path, whatever the size of the index), the first time a segment's
    reader is asked for these paths, and kept with that reader (:func:`readable_documents`).
    A search then intersects its matches with a sorted list, skipping to the next readable
    document by bisection: a user who reads little costs less than a superuser, a user who
    reads much about as much. ``work`` counts the posting lists read; copies share it."""

    fieldname = None  # no single field (Whoosh's highlighter asks)

    def __init__(self, readable: tuple[str, ...], work: Work | None = None):
        self.readable = tuple(readable)
        self.work = work

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.readable == other.readable

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.readable))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.readable)} paths)"

    def __deepcopy__(self, memo) -> "Readable":
        return self  # immutable, and the counter is shared (Query.copy deep-copies)

    def estimate_size(self, ixreader) -> int:
        return len(readable_documents(ixreader, self.readable, self.work))

    def matcher(self, searcher, context=None):
        documents = readable_documents(searcher.reader(), self.readable, self.work)
        return _SortedDocuments(documents) if documents else NullMatcher()


_kept: "weakref.WeakKeyDictionary[Any, OrderedDict]" = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def readable_documents(reader, readable: tuple[str, ...], work: Work | None = None) -> array:
    """The sorted numbers of the documents of ``reader`` (usually one segment's) that are not
    deleted and lie at or below one of the ``readable`` paths.

    Read from the posting lists the first time, then kept with ``reader`` for the last
    :data:`READABLE_KEPT` grant sets: a reader reads one unchanging state of its segments
    (the Whoosh engine opens new readers when the index changes), so the answer is the same
    until the reader is dropped, with what was kept. ``work.readable_postings`` counts the
    posting lists read (none when kept).
    """
    with _kept_lock:
        kept = _kept.setdefault(reader, OrderedDict())
        documents = kept.get(readable)
        if documents is not None:
            kept.move_to_end(readable)
            return documents
    documents = _read_readable(reader, readable, work)
    with _kept_lock:
        kept[readable] = documents
        while len(kept) > READABLE_KEPT:
            kept.popitem(last=False)
    return documents


def _read_readable(reader, readable: tuple[str, ...], work: Work | None) -> array:
    """:func:`readable_documents`, read from the index."""
    found = set()
    for fieldname in READABLE_FIELDS:
        for path in readable:
            try:
                postings = reader.postings(fieldname, path)  # deleted documents left out
            except TermNotFound:
                continue
            found.update(postings.all_ids())
            if work is not None:
                work.readable_postings += 1
    return array("I", sorted(found))


class _SortedDocuments(ListMatcher):
    """A matcher over a sorted array of document numbers that skips by bisection (Whoosh's
    ListMatcher steps one by one) and scores nothing, so that a filter leaves scores alone."""

    def skip_to(self, id: int) -> None:
        if not self.is_active():
            raise ReadTooFar
        self._i = bisect.bisect_left(self._ids, id, self._i)

    def score(self) -> float:
        return 0.0


class ValidAt(WrappingQuery):
    """The documents of ``child`` valid at ``moment``: written before it (like api.lookup's
    ``before``) and not replaced before it, ``mtime < moment <= valid_until``.

    The check reads the sortable ``mtime`` and ``valid_until`` columns of each document the
    child matches, instead of And-ing two date ranges: a range over a history's timestamps
    expands to thousands of posting lists, which made as-of searches 20-100x a plain one.
    """

    def __init__(self, child: wq.Query, moment: datetime):
        super().__init__(child)
        self.moment = moment

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and (self.child, self.moment) == (other.child, other.moment)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.child, self.moment))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.child!r}, {self.moment.isoformat()})"

    def _rewrap(self, child: wq.Query) -> "ValidAt":
        return type(self)(child, self.moment)

    def matcher(self, searcher, context=None):
        child = self.child.matcher(searcher, context)
        if not child.is_active():
            return child
        valid = _ValidDocuments(searcher.reader(), searcher.schema["mtime"].prepare_datetime(self.moment))
        return FilterMatcher(child, valid)


class _ValidDocuments:
    """The document numbers of one segment valid at a moment, as a set that reads columns."""

    def __init__(self, reader, moment: int):
        # Raw column values: the same 64-bit longs that prepare_datetime gives.
        self.mtime = reader.column_reader("mtime", translate=False)
        self.valid_until = reader.column_reader("valid_until", translate=False)
        self.moment = moment

    def __contains__(self, docnum: int) -> bool:
        return self.mtime[docnum] < self.moment <= self.valid_until[docnum]


class _MarkFormatter(HtmlFormatter):
    """``<mark>term</mark>``; everything else HTML-escaped (by HtmlFormatter)."""

    template = "<%(tag)s>%(t)s</%(tag)s>"


def run_whoosh(backend, request: SearchRequest) -> RawResults:
    """Run ``request`` on the app's Whoosh engine with its reused searcher."""
    work = Work()
    searcher = backend.searcher()  # sets the backend up on first use
    parsed = parse(request.query, backend.schema)  # for the suggestion too
    q = whoosh_query(request, backend.schema, work=work, parsed=parsed, live_filter=False)
    q = bound_expansions(q, searcher.reader(), work)
    # optimize=False: count the matches while collecting them, instead of a second pass over
    # the index for the total (Whoosh's block skipping saves less than that pass costs).
    options = {"limit": request.page * request.page_size, "optimize": False, "mask": deleted_mask(request)}
    if request.sort != "relevance":
        options["sortedby"] = SORT_FIELDS[request.sort.lstrip("-")]
        options["reverse"] = request.sort.startswith("-")
    if request.want_facets:
        options["groupedby"] = _facets(searcher, request, work)
        options["maptype"] = sorting.Count
    results = searcher.search(q, **options)
    if request.highlight:
        results.formatter = _MarkFormatter(tagname="mark", between=" … ")
    offset = (request.page - 1) * request.page_size
    hits = []
    for hit in results[offset : offset + request.page_size]:
        fields = hit.fields()
        highlights = {}
        if request.highlight:
            # The content is stored apart from the searched field; highlight it with that
            # field's analyzer, so the marks fall on the words that matched.
            snippets = {
                "text": hit.highlights("text", text=fields.get("content", ""), top=2),
                "path": hit.highlights("path", top=1),
            }
            highlights = {name: snippet for name, snippet in snippets.items() if snippet}
        hits.append(
            RawHit(
                fields=fields, score=hit.score if request.sort == "relevance" else None, highlights=highlights
            )
        )
    facets = _facet_counts(results, request) if request.want_facets else {}
    suggestion = None
    if wants_suggestion(request, len(results)) and request.readable != ():
        within = None if request.readable is None else readable_filter(request.readable, work=work)
        suggestion = suggest(
            searcher, backend.schema, request.query, work, within, parsed=parsed, matched=len(results) > 0
        )
    return RawResults(hits=hits, total=len(results), facets=facets, suggestion=suggestion, work=work)


def wants_suggestion(request: SearchRequest, total: int) -> bool:
    return request.suggest or (request.suggest is None and total < FEW_HITS)


def _facets(searcher, request: SearchRequest, work: Work) -> sorting.Facets:
    facets = sorting.Facets()
    for name, fieldname in FACET_FIELDS.items():
        facets.add_facet(name, sorting.FieldFacet(fieldname, maptype=sorting.Count))
    reader = searcher.reader()
    for attribute in request.facets:
        # One query per value is counted over the matches: only the FACET_MAX_VALUES most
        # frequent values are, among the first SEARCH_MAX_EXPANSION read for the attribute.
        prefix = f"{attribute.lower()}="
        read = itertools.islice(reader.expand_prefix("attrs", prefix), app_settings.SEARCH_MAX_EXPANSION)
        frequencies = []
        for term in read:
            text = term.decode() if isinstance(term, bytes) else term
            frequencies.append((reader.doc_frequency("attrs", text), text))
        work.terms_scanned += len(frequencies)
        top = heapq.nlargest(app_settings.FACET_MAX_VALUES, frequencies)
        work.facet_values += len(top)
        values = {text[len(prefix) :]: wq.Term("attrs", text) for _, text in top}
        facets.add_facet(f"attr:{attribute}", sorting.QueryFacet(values, maptype=sorting.Count))
    return facets


def _facet_counts(results, request: SearchRequest) -> dict:
    def ordered(groups):
        return sorted(
            ((k, v) for k, v in groups.items() if k is not None), key=lambda kv: (-kv[1], str(kv[0]))
        )

    counts = {name: ordered(results.groups(name)) for name in FACET_FIELDS}
    counts["attributes"] = {a: ordered(results.groups(f"attr:{a}")) for a in request.facets}
    return counts


# --- spelling suggestions --------------------------------------------------------------------

# Fields whose words are corrected: the default field (stemmed) and the path's words.
SPELLED_FIELDS = (DEFAULT_FIELD, "path", "name")
# Edits between a word and its correction at most (more is slow in Whoosh, and rarely right).
MAX_EDITS = 2
# Characters of a document's text read to find how a stem is written there.
SPELLING_SCAN_CHARS = 20_000
# Candidates of one word looked for in a live (and readable) document at most: a reader's
# candidates come from the whole index's vocabulary, and past the best few, one that the
# reader's documents have is rarely the word meant.
CHECKED_CANDIDATES = 10


def suggest(
    searcher,
    schema,
    text: str,
    work: Work | None = None,
    within: wq.Query | None = None,
    *,
    parsed: wq.Query | None = None,
    matched: bool = False,
) -> str | None:
    """``text`` with each word that is not in the index replaced by the closest word that is,
    or None when no word needs (or finds) a correction.

    Corrections come from the index's own vocabulary: nothing is added when indexing, unlike
    Haystack's spelling field, which more than halves indexing speed. Words in phrases,
    wildcards and ``NOT`` clauses, and attribute values, are left as they are, and so are words
    longer than ``SUGGEST_MAX_WORD_CHARS``. The work is bounded: each candidate tried counts
    into ``work.suggestion_candidates``, and the search for corrections stops when
    ``SUGGEST_BUDGET`` is spent, with the corrections found so far.

    ``within`` (the searching user's :func:`readable_filter`) keeps the vocabulary to the
    documents it matches: a word counts as known, and a correction is offered, only when such
    a document has it, and candidates are then ranked without the index-wide frequencies, so
    that no suggestion tells anything about the documents the user may not read.

    ``parsed``: ``text`` as :func:`parse` gave it, when the caller has it. ``matched``: the
    search of ``text`` (within ``within``) matched a document, so the words that every match
    has (the query's required words) are known without a lookup.
    """
    if not text.strip() or text.strip() == "*":
        return None
    work = work if work is not None else Work()
    reader = searcher.reader()
    longest = app_settings.SUGGEST_MAX_WORD_CHARS
    parsed = parse(text, schema) if parsed is None else parsed
    required = {(q.fieldname, q.text) for q in parsed.requires() if type(q) is wq.Term} if matched else set()
    changes = []
    for term in _correctable_terms(parsed):
        typed = text[term.startchar : term.endchar]
        if max(len(typed), len(term.text)) > longest or (term.fieldname, term.text) in required:
            continue
        if within is None:
            known = (term.fieldname, term.text) in reader
        else:
            known = _live(searcher, term, within, work) is not None
        if known:
            continue
        word = _closest_word(searcher, term.fieldname, term.text, typed.lower(), work, within)
        if word is not None:
            changes.append((term.startchar, term.endchar, _same_case(word, typed)))
    for start, end, word in sorted(changes, reverse=True):
        text = text[:start] + word + text[end:]
    return text if changes else None


def _correctable_terms(q: wq.Query):
    """The single-word terms of the spelled fields that the user typed (their place in the
    query text is known), outside ``NOT``."""
    if isinstance(q, wq.Not):
        return
    if type(q) is wq.Term:
        if q.fieldname in SPELLED_FIELDS and getattr(q, "startchar", None) is not None:
            yield q
        return
    for child in q.children():
        yield from _correctable_terms(child)


def _closest_word(
    searcher, fieldname: str, term: str, typed: str, work: Work, within: wq.Query | None = None
) -> str | None:
    """The word of a live document closest to what was ``typed`` (``term`` once analysed).

    The candidates are the terms of the words one edit away from ``typed`` (in the stemmed
    default field, this finds "meet", hence "meeting", for "meetnig", whose own stem is three
    edits away), then the field's terms up to MAX_EDITS edits away (:func:`_terms_within`):
    fewest edits first, then the most frequent. The best :data:`CHECKED_CANDIDATES` are
    looked for in a live document that ``within`` matches, one query each.
    """
    reader = searcher.reader()
    neighbours = _known_neighbours(searcher, fieldname, typed, work) if fieldname == DEFAULT_FIELD else {}
    near = set(neighbours.values())
    candidates = near | set(_terms_within(reader, fieldname, term, work))

    def frequency(candidate: str) -> int:
        return reader.doc_frequency(fieldname, candidate) if within is None else 0

    ranked = sorted(candidates, key=lambda c: (c not in near, distance(c, term), -frequency(c), c))
    for candidate in ranked[:CHECKED_CANDIDATES]:
        if not work.spend_suggestion():
            return None
        found = _live(searcher, wq.Term(fieldname, candidate), within, work)
        if found is None:
            continue
        if fieldname != DEFAULT_FIELD:
            return candidate  # the path's words are indexed as written, lower-cased
        written = sorted(w for w, t in neighbours.items() if t == candidate)
        spelled = _spelled(searcher, found, fieldname, candidate, typed)
        return spelled or (written[0] if written else candidate)
    return None


def _known_neighbours(searcher, fieldname: str, typed: str, work: Work) -> dict[str, str]:
    """``{word: its term}`` for the words one edit away from ``typed`` whose term is in the
    index (a few hundred candidates, each analysed and looked up, until the budget is spent)."""
    analyzer = searcher.schema[fieldname].analyzer
    reader = searcher.reader()
    known = {}
    for word in _one_edit(typed):
        if not work.spend_suggestion():
            break
        terms = [token.text for token in analyzer(word)]
        if len(terms) == 1 and (fieldname, terms[0]) in reader:
            known[word] = terms[0]
    return known


def _one_edit(word: str) -> Iterator[str]:
    """Every string one deletion, transposition, replacement or insertion away from ``word``,
    once each, made as they are asked for (so that a budget bounds the making too)."""
    letters = sorted(set(string.ascii_lowercase) | set(word))
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = itertools.chain(
        (a + b[1:] for a, b in splits if b),
        (a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1),
        (a + c + b[1:] for a, b in splits if b for c in letters),
        (a + c + b for a, b in splits for c in letters),
    )
    seen = {word}
    for edit in edits:
        if edit not in seen:
            seen.add(edit)
            yield edit


def _terms_within(reader, fieldname: str, term: str, work: Work) -> Iterator[str]:
    """The field's terms at most MAX_EDITS edits from ``term`` that start with its first
    letter (rarely the wrong one, and requiring it narrows the scan). Each term read counts
    against the budget; Whoosh's ``terms_within`` reads them uncounted."""
    from_bytes = reader.schema[fieldname].from_bytes
    for btext in reader.expand_prefix(fieldname, term[:1]):
        if not work.spend_suggestion():
            return
        word = from_bytes(btext)
        if abs(len(word) - len(term)) <= MAX_EDITS and distance(word, term, limit=MAX_EDITS) <= MAX_EDITS:
            yield word


def _live(searcher, term: wq.Term, within: wq.Query | None = None, work: Work | None = None) -> int | None:
    """The number of a document that is not deleted (a deleted one's terms stay in the index
    until its segment is merged), has ``term`` and matches ``within``; None if there is none.
    One query, counted into ``work.suggestion_checks``."""
    if work is not None:
        work.suggestion_checks += 1
    q = term if within is None else wq.And([term, within])
    if not isinstance(searcher, Searcher):  # another engine's view (tantivy_search)
        return next(iter(searcher.docs_for_query(q)), None)
    # The first match of each segment's matcher, found by skipping: docs_for_query would read
    # every match of the term to intersect them.
    for leaf, offset in searcher.leaf_searchers():
        matcher = q.matcher(leaf)
        if matcher.is_active():
            return offset + matcher.id()
    return None


def _spelled(searcher, docnum: int, fieldname: str, term: str, typed: str) -> str | None:
    """How the stem ``term`` is written in document ``docnum``, which has it: of the words
    that give it ("configure", "configuration"), the one closest to ``typed``; None if none
    is found early in the document."""
    stored = searcher.stored_fields(docnum)
    # The default field's text as search_indexes.prepare_text built it, content last.
    value = "\n".join(
        [
            " ".join(PATH_WORDS.findall(stored.get("path", ""))),
            stored.get("attributes", ""),
            stored.get("content", ""),
        ]
    )[:SPELLING_SCAN_CHARS]
    analyzer = searcher.schema[fieldname].analyzer
    words = {
        value[t.startchar : t.endchar].lower()
        for t in analyzer(value, chars=True, mode="index")
        if t.text == term
    }
    return min(words, key=lambda word: (distance(word, typed), word), default=None)


def _same_case(word: str, typed: str) -> str:
    """``word`` capitalised like the word the user typed."""
    if typed.isupper() and len(typed) > 1:
        return word.upper()
    if typed[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


# --- any other Haystack backend --------------------------------------------------------------


def run_haystack(alias: str, model, request: SearchRequest) -> RawResults:
    """Run ``request`` through Haystack's SearchQuerySet, for backends other than the app's
    Whoosh engine. The query text is taken as plain words (``auto_query``), attribute facets
    are not offered, and spelling suggestions are the backend's (with ``INCLUDE_SPELLING``)."""
    from haystack.inputs import Exact
    from haystack.query import SQ, SearchQuerySet

    sqs = SearchQuerySet(using=alias).models(model)
    if request.readable is not None:
        if not request.readable:
            facets = {name: [] for name in FACET_FIELDS} | {"attributes": {}} if request.want_facets else {}
            return RawResults(hits=[], total=0, facets=facets)
        readable = SQ()
        for path in request.readable:
            readable |= SQ(ancestors=Exact(path)) | SQ(path_exact=Exact(path))
        sqs = sqs.filter(readable)
    if request.query.strip() and request.query.strip() != "*":
        sqs = sqs.auto_query(request.query)
    if request.under:
        sqs = sqs.filter(ancestors=Exact(request.under))
    if request.content_type:
        sqs = sqs.filter(content_type=Exact(request.content_type.lower()))
    if request.musers:
        sqs = sqs.filter(muser__in=list(request.musers))
    start, end = request.mtime_range
    if start:
        sqs = sqs.filter(mtime__gte=start)
    if end:
        sqs = sqs.filter(mtime__lt=end)
    low, high = request.size_range
    if low is not None:
        sqs = sqs.filter(size__gte=low)
    if high is not None:
        sqs = sqs.filter(size__lte=high)
    for name, value in request.attributes:
        sqs = sqs.filter(attrs=Exact(name.lower() if value is None else f"{name}={value}".lower()))
    if request.as_of:
        sqs = sqs.filter(mtime__lt=request.as_of, valid_until__gte=request.as_of)
    if request.cluster is not None:
        sqs = sqs.filter(cluster=request.cluster)
    elif request.history and not request.include_deleted:
        sqs = sqs.exclude(cluster=int(Cluster.DELETED))
    if request.sort != "relevance":
        sqs = sqs.order_by(request.sort.replace("path", "path_exact"))
    if request.highlight:
        sqs = sqs.highlight()
    offset = (request.page - 1) * request.page_size
    hits = []
    for result in sqs[offset : offset + request.page_size]:
        fields = result.get_additional_fields()
        highlighted = getattr(result, "highlighted", None) or {}
        hits.append(
            RawHit(
                fields=fields,
                score=result.score,
                highlights={"text": " … ".join(highlighted.get("text", []))} if highlighted else {},
            )
        )
    facets = {}
    if request.want_facets:
        counts = sqs.facet("muser").facet("content_type_exact").facet("cluster").facet_counts()
        fields = counts.get("fields", {})
        facets = {name: fields.get(f, []) for name, f in FACET_FIELDS.items()}
        facets["attributes"] = {}
    total = sqs.count()
    return RawResults(
        hits=hits, total=total, facets=facets, suggestion=_haystack_suggestion(sqs, request, total)
    )


def _haystack_suggestion(sqs, request: SearchRequest, total: int) -> str | None:
    # Haystack's own suggestion: only from a backend with INCLUDE_SPELLING (its spelling
    # field, or the search engine's suggester), at the cost of running the query again.
    if not (
        wants_suggestion(request, total) and request.query.strip() and sqs.query.backend.include_spelling
    ):
        return None
    suggestion = sqs.spelling_suggestion()
    return suggestion if suggestion and suggestion != request.query else None


def open_end_to_none(value):
    """``valid_until`` as stored, with the open end given back as None."""
    if isinstance(value, datetime) and value.replace(tzinfo=None) >= OPEN_END.replace(tzinfo=None):
        return None
    return value
