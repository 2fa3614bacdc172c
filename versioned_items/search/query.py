"""Running a search request: compiled to a Whoosh query on the app's engine, or expressed with
Haystack's ``SearchQuerySet`` on any other backend.

Query text is Whoosh's syntax (``AND``/``OR``/``NOT``, ``"phrases"``, ``field:value``,
``wild*``, ``[a TO b]``), searched in path, name, content and attributes by default. A field
name that is not a document field is an attribute: ``color:red``, ``dc.creator:alice``,
``color:re*``.
"""

import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from whoosh import query as wq
from whoosh import sorting
from whoosh.query.wrappers import WrappingQuery
from whoosh.highlight import HtmlFormatter
from whoosh.matching.wrappers import FilterMatcher
from whoosh.qparser import FieldsPlugin, PrefixPlugin, QueryParser, WildcardPlugin, syntax
from whoosh.support.levenshtein import distance

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


@dataclass
class RawHit:
    fields: dict
    score: float | None
    highlights: dict[str, str] = field(default_factory=dict)


@dataclass
class RawResults:
    hits: list[RawHit]
    total: int
    facets: dict[str, Any]
    suggestion: str | None = None


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
                raise InvalidQuery(f"query {text!r} closes a range with {char!r} at character {position} that was never opened")
            brackets.pop()
    if quote is not None:
        raise InvalidQuery(f"query {text!r} has an unclosed '\"' at character {quote}")
    if depth > 0:
        raise InvalidQuery(f"query {text!r} has {depth} unclosed '('")
    if brackets:
        char, position = brackets[-1]
        raise InvalidQuery(f"query {text!r} opens a range with {char!r} at character {position} but never closes it; write [start TO end]")
    words = text.replace("(", " ").replace(")", " ").split()
    if words and words[-1] in OPERATORS:
        raise InvalidQuery(f"query {text!r} ends with the operator {words[-1]}; add a term after it")
    if words and words[0] in OPERATORS - {"NOT"}:
        raise InvalidQuery(f"query {text!r} starts with the operator {words[0]}; add a term before it")
    empty = re.search(r'(?:^|[\s(])([^\s:()"]+):(?=$|[\s)])', text)
    if empty:
        raise InvalidQuery(f"query {text!r} names the field {empty.group(1)!r} but gives no value after the ':'")


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


def parse(text: str, schema) -> wq.Query:
    """The Whoosh query for ``text``. Raises InvalidQuery with a readable message."""
    if not text.strip() or text.strip() == "*":
        return wq.Every()
    check_syntax(text)
    parser = _parser(schema)
    # Whoosh records some errors on its shared NullQuery object: clear what a previous parse left.
    vars(wq.NullQuery).pop("error", None)
    try:
        parsed = parser.parse(text)
    except InvalidQuery as error:
        raise InvalidQuery(f"query {text!r} is not valid: {error}") from None
    except Exception as error:  # Whoosh raises bare Exceptions (e.g. for an unparseable date)
        raise InvalidQuery(f"query {text!r} is not valid: {error}") from None
    errors = list(_errors(parsed))
    vars(wq.NullQuery).pop("error", None)
    if errors:
        raise InvalidQuery(f"query {text!r} is not valid: {errors[0]}")
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


def whoosh_query(request: SearchRequest, schema) -> wq.Query:
    """The whole request as one Whoosh query: the parsed text, And-ed with zero-score filters."""
    q = parse(request.query, schema)
    filters = []
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
    if filters:
        q = wq.And([q] + [wq.ConstantScoreQuery(f, 0.0) for f in filters])
    if request.as_of:
        q = ValidAt(q, _naive(request.as_of))
    if request.history and not request.include_deleted and request.cluster is None:
        q = wq.AndNot(q, wq.NumericRange("cluster", Cluster.DELETED, Cluster.DELETED))
    return q


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
    searcher = backend.searcher()  # sets the backend up on first use
    q = whoosh_query(request, backend.schema)
    # optimize=False: count the matches while collecting them, instead of a second pass over
    # the index for the total (Whoosh's block skipping saves less than that pass costs).
    options = {"limit": request.page * request.page_size, "optimize": False}
    if request.sort != "relevance":
        options["sortedby"] = SORT_FIELDS[request.sort.lstrip("-")]
        options["reverse"] = request.sort.startswith("-")
    if request.want_facets:
        options["groupedby"] = _facets(searcher, request)
        options["maptype"] = sorting.Count
    results = searcher.search(q, **options)
    if request.highlight:
        results.formatter = _MarkFormatter(tagname="mark", between=" … ")
    offset = (request.page - 1) * request.page_size
    hits = []
    for hit in results[offset:offset + request.page_size]:
        fields = hit.fields()
        highlights = {}
        if request.highlight:
            # The content is stored apart from the searched field; highlight it with that
            # field's analyzer, so the marks fall on the words that matched.
            snippets = {"text": hit.highlights("text", text=fields.get("content", ""), top=2),
                        "path": hit.highlights("path", top=1)}
            highlights = {name: snippet for name, snippet in snippets.items() if snippet}
        hits.append(RawHit(fields=fields, score=hit.score if request.sort == "relevance" else None,
                           highlights=highlights))
    facets = _facet_counts(results, request) if request.want_facets else {}
    suggestion = suggest(searcher, backend.schema, request.query) if wants_suggestion(request, len(results)) else None
    return RawResults(hits=hits, total=len(results), facets=facets, suggestion=suggestion)


def wants_suggestion(request: SearchRequest, total: int) -> bool:
    return request.suggest or (request.suggest is None and total < FEW_HITS)


def _facets(searcher, request: SearchRequest) -> sorting.Facets:
    facets = sorting.Facets()
    for name, fieldname in FACET_FIELDS.items():
        facets.add_facet(name, sorting.FieldFacet(fieldname, maptype=sorting.Count))
    for attribute in request.facets:
        prefix = f"{attribute.lower()}="
        values = {}
        for term in searcher.reader().expand_prefix("attrs", prefix):
            text = term.decode() if isinstance(term, bytes) else term
            values[text[len(prefix):]] = wq.Term("attrs", text)
        facets.add_facet(f"attr:{attribute}", sorting.QueryFacet(values, maptype=sorting.Count))
    return facets


def _facet_counts(results, request: SearchRequest) -> dict:
    def ordered(groups):
        return sorted(((k, v) for k, v in groups.items() if k is not None), key=lambda kv: (-kv[1], str(kv[0])))

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


def suggest(searcher, schema, text: str) -> str | None:
    """``text`` with each word that is not in the index replaced by the closest word that is,
    or None when no word needs (or finds) a correction.

    Corrections come from the index's own vocabulary: nothing is added when indexing, unlike
    Haystack's spelling field, which more than halves indexing speed. Words in phrases,
    wildcards and ``NOT`` clauses, and attribute values, are left as they are.
    """
    if not text.strip() or text.strip() == "*":
        return None
    reader = searcher.reader()
    changes = []
    for term in _correctable_terms(parse(text, schema)):
        if (term.fieldname, term.text) in reader:
            continue
        typed = text[term.startchar:term.endchar]
        word = _closest_word(searcher, term.fieldname, term.text, typed.lower())
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


def _closest_word(searcher, fieldname: str, term: str, typed: str) -> str | None:
    """The word of a live document closest to what was ``typed`` (``term`` once analysed).

    The candidates are the terms of the words one edit away from ``typed`` (in the stemmed
    default field, this finds "meet", hence "meeting", for "meetnig", whose own stem is three
    edits away), then Whoosh's edit-distance search over the field's terms (``terms_within``,
    up to MAX_EDITS): fewest edits first, then the most frequent.
    """
    reader = searcher.reader()
    neighbours = _known_neighbours(searcher, fieldname, typed) if fieldname == DEFAULT_FIELD else {}
    near = set(neighbours.values())
    # The first letter is rarely the wrong one, and requiring it makes the search fast.
    candidates = near | set(reader.terms_within(fieldname, term, MAX_EDITS, prefix=1))
    ranked = sorted(candidates, key=lambda c: (c not in near, distance(c, term), -reader.doc_frequency(fieldname, c), c))
    for candidate in ranked:
        if not _live(searcher, fieldname, candidate):
            continue
        if fieldname != DEFAULT_FIELD:
            return candidate  # the path's words are indexed as written, lower-cased
        written = sorted(w for w, t in neighbours.items() if t == candidate)
        return _spelled(searcher, fieldname, candidate, typed) or (written[0] if written else candidate)
    return None


def _known_neighbours(searcher, fieldname: str, typed: str) -> dict[str, str]:
    """``{word: its term}`` for the words one edit away from ``typed`` whose term is in the
    index (a few hundred candidates, each analysed and looked up)."""
    analyzer = searcher.schema[fieldname].analyzer
    reader = searcher.reader()
    known = {}
    for word in _one_edit(typed):
        terms = [token.text for token in analyzer(word)]
        if len(terms) == 1 and (fieldname, terms[0]) in reader:
            known[word] = terms[0]
    return known


def _one_edit(word: str) -> set[str]:
    """Every string one deletion, transposition, replacement or insertion away from ``word``."""
    letters = set(string.ascii_lowercase) | set(word)
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = {a + b[1:] for a, b in splits if b}
    edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    edits |= {a + c + b[1:] for a, b in splits if b for c in letters}
    edits |= {a + c + b for a, b in splits for c in letters}
    return edits - {word}


def _live(searcher, fieldname: str, term: str) -> bool:
    """Whether a document that is not deleted has ``term`` (a deleted one's terms stay in the
    index until its segment is merged)."""
    return next(iter(searcher.docs_for_query(wq.Term(fieldname, term))), None) is not None


def _spelled(searcher, fieldname: str, term: str, typed: str) -> str | None:
    """How the stem ``term`` is written in a live document that has it: of the words that
    give it ("configure", "configuration"), the one closest to ``typed``; None if none is
    found early in the document."""
    docnum = next(iter(searcher.docs_for_query(wq.Term(fieldname, term))))
    stored = searcher.stored_fields(docnum)
    # The default field's text as search_indexes.prepare_text built it, content last.
    value = "\n".join([" ".join(PATH_WORDS.findall(stored.get("path", ""))), stored.get("attributes", ""),
                       stored.get("content", "")])[:SPELLING_SCAN_CHARS]
    analyzer = searcher.schema[fieldname].analyzer
    words = {value[t.startchar:t.endchar].lower() for t in analyzer(value, chars=True, mode="index") if t.text == term}
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
    from haystack.query import SearchQuerySet

    sqs = SearchQuerySet(using=alias).models(model)
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
    for result in sqs[offset:offset + request.page_size]:
        fields = result.get_additional_fields()
        highlighted = getattr(result, "highlighted", None) or {}
        hits.append(RawHit(fields=fields, score=result.score,
                           highlights={"text": " … ".join(highlighted.get("text", []))} if highlighted else {}))
    facets = {}
    if request.want_facets:
        counts = sqs.facet("muser").facet("content_type_exact").facet("cluster").facet_counts()
        fields = counts.get("fields", {})
        facets = {name: fields.get(f, []) for name, f in FACET_FIELDS.items()}
        facets["attributes"] = {}
    total = sqs.count()
    return RawResults(hits=hits, total=total, facets=facets, suggestion=_haystack_suggestion(sqs, request, total))


def _haystack_suggestion(sqs, request: SearchRequest, total: int) -> str | None:
    # Haystack's own suggestion: only from a backend with INCLUDE_SPELLING (its spelling
    # field, or the search engine's suggester), at the cost of running the query again.
    if not (wants_suggestion(request, total) and request.query.strip() and sqs.query.backend.include_spelling):
        return None
    suggestion = sqs.spelling_suggestion()
    return suggestion if suggestion and suggestion != request.query else None


def open_end_to_none(value):
    """``valid_until`` as stored, with the open end given back as None."""
    if isinstance(value, datetime) and value.replace(tzinfo=None) >= OPEN_END.replace(tzinfo=None):
        return None
    return value
