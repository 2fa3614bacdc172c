"""Running a search request: compiled to a Whoosh query on the app's engine, or expressed with
Haystack's ``SearchQuerySet`` on any other backend.

Query text is Whoosh's syntax (``AND``/``OR``/``NOT``, ``"phrases"``, ``field:value``,
``wild*``, ``[a TO b]``), searched in path, name, content and attributes by default. A field
name that is not a document field is an attribute: ``color:red``, ``dc.creator:alice``,
``color:re*``.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from whoosh import query as wq
from whoosh import sorting
from whoosh.highlight import HtmlFormatter
from whoosh.qparser import FieldsPlugin, PrefixPlugin, QueryParser, WildcardPlugin, syntax

from versioned_items.exceptions import InvalidQuery
from versioned_items.models import Cluster

from .search_indexes import OPEN_END

# Searched by query words that name no field: content, path words and attributes in one field,
# so that a query costs what it costs on raw Whoosh.
DEFAULT_FIELD = "text"
# Sort keys of the API and the index fields they sort on.
SORT_FIELDS = {"mtime": "mtime", "path": "path_exact", "size": "size"}
FACET_FIELDS = {"muser": "muser", "content_type": "content_type_exact", "cluster": "cluster"}
OPERATORS = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}


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
    if request.as_of:
        # Valid at T: written before T (like api.lookup's "before") and not replaced before T.
        moment = _naive(request.as_of)
        filters.append(wq.DateRange("mtime", None, moment, endexcl=True))
        filters.append(wq.DateRange("valid_until", moment, None))
    if request.cluster is not None:
        filters.append(wq.NumericRange("cluster", request.cluster, request.cluster))
    if filters:
        q = wq.And([q] + [wq.ConstantScoreQuery(f, 0.0) for f in filters])
    if request.history and not request.include_deleted and request.cluster is None:
        q = wq.AndNot(q, wq.NumericRange("cluster", Cluster.DELETED, Cluster.DELETED))
    return q


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
    return RawResults(hits=hits, total=len(results), facets=facets)


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


# --- any other Haystack backend --------------------------------------------------------------


def run_haystack(alias: str, model, request: SearchRequest) -> RawResults:
    """Run ``request`` through Haystack's SearchQuerySet, for backends other than the app's
    Whoosh engine. The query text is taken as plain words (``auto_query``), and attribute
    facets are not offered."""
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
    return RawResults(hits=hits, total=sqs.count(), facets=facets)


def open_end_to_none(value):
    """``valid_until`` as stored, with the open end given back as None."""
    if isinstance(value, datetime) and value.replace(tzinfo=None) >= OPEN_END.replace(tzinfo=None):
        return None
    return value
