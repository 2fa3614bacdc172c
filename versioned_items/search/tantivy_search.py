"""The app's search on the tantivy engine (:class:`.backends.tantivy.TantivySearchBackend`).

:func:`run_tantivy` does what :func:`.query.run_whoosh` does on the Whoosh engine, with the
same pieces: the request becomes the same Whoosh query tree (:func:`.query.whoosh_query`,
parsed with the schema whose analyzers are tantivy's), its wildcards are expanded and bounded
by :func:`.query.bound_expansions` over the engine's Whoosh-reader view, and the tree is
compiled into one tantivy query. Only ``ValidAt`` (as-of) compiles differently: two ranges on
the ``mtime`` and ``valid_until`` columns, which cost tantivy no more than the plain query.
Attribute facets and spelling suggestions run the app's own code over the same reader view.

This module imports tantivy: :mod:`.api` imports it only when a connection uses that engine.
"""

import tantivy
from whoosh import query as wq
from whoosh import sorting
from whoosh.util.times import datetime_to_long

from versioned_items.conf import app_settings

from . import query as q
from .backends.tantivy import render_snippet
from .backends.tantivy_compile import SHOULD, Compiler, must
from .backends.tantivy_reader import TantivyReader

# The fields highlighted, and the stored field each one's snippet is cut from: the default
# field is not stored, its text is the stored content (as on the Whoosh engine).
HIGHLIGHTED = {"text": "content", "path": "path"}
# The grant filter stays the readable paths' terms however many there are (query.TermSet,
# compiled by compile_term_set), which tantivy merges in Rust, where finding the documents in
# Python and keeping them (query.Readable, the Whoosh engine's form) would cost more.
ALL_TERMS = 1 << 30


def run_tantivy(backend, request: q.SearchRequest) -> q.RawResults:
    """Run ``request`` on the tantivy engine's index ``backend``.

    Returns the page of hits (the stored fields, with ``<mark>`` highlights), the exact total,
    the facets asked for and the spelling suggestion, as :func:`.query.run_whoosh` does.
    Raises InvalidQuery for malformed query text or a wildcard, prefix or range matching more
    than ``SEARCH_MAX_EXPANSION`` index terms, IndexUnavailable when the index cannot be read.
    """
    work = q.Work()
    searcher = backend.searcher()  # sets the backend up (and its query schema) on first use
    # tantivy lists a prefix's terms all at once, not lazily as Whoosh does: each listing reads
    # no more than its caller can use. For the expansions, one past the bound they enforce.
    reader = backend.reader(searcher, scan_limit=app_settings.SEARCH_MAX_TERMS_SCANNED + 1)
    parsed = q.parse(request.query, backend.schema)  # for the suggestion too
    tree = q.whoosh_query(request, backend.schema, readable_terms=ALL_TERMS, parsed=parsed)
    tree = q.bound_expansions(tree, reader, work)
    handlers = _handlers()
    compiled = backend.compile(tree, searcher, handlers=handlers)
    offset = (request.page - 1) * request.page_size
    found, total = backend._top(searcher, compiled, _sort_by(request), offset, offset + request.page_size)
    hits = _hits(backend, searcher, compiled, found, request)
    facets = facet_counts(backend, searcher, compiled, request, work) if request.want_facets else {}
    suggestion = _suggestion(backend, searcher, request, total, work, parsed, handlers)
    return q.RawResults(hits=hits, total=total, facets=facets, suggestion=suggestion, work=work)


def _hits(
    backend, searcher, compiled: tantivy.Query, found: list, request: q.SearchRequest
) -> list[q.RawHit]:
    """The RawHits of ``found`` (``[(score, address)]``): stored fields, score, highlights."""
    highlight = _highlighter(backend, searcher, compiled) if request.highlight else None
    hits = []
    for score, address in found:
        fields = backend.stored_fields(searcher.doc(address))
        hits.append(
            q.RawHit(
                fields=fields,
                score=score if request.sort == "relevance" else None,
                highlights=highlight(fields) if highlight else {},
            )
        )
    return hits


def _suggestion(
    backend, searcher, request: q.SearchRequest, total: int, work: q.Work, parsed, handlers: dict
) -> str | None:
    """The app's spelling suggestion (:func:`.query.suggest`), over the readable documents only
    (``parsed``: the query text as :func:`.query.parse` gave it; ``handlers``: the search's)."""
    if not q.wants_suggestion(request, total) or request.readable == ():
        return None
    # Each term a suggestion reads spends one candidate of its budget.
    words = _Reader(backend, searcher, app_settings.SUGGEST_BUDGET + 1, handlers)
    within = None if request.readable is None else q.readable_filter(request.readable, ALL_TERMS)
    return q.suggest(words, backend.schema, request.query, work, within, parsed=parsed, matched=total > 0)


class _Reader(TantivyReader):
    """The engine's reader view, whose documents for a query are found with the search's
    compile handlers (a suggestion's checks reuse its grant filter)."""

    def __init__(self, backend, searcher, scan_limit: int, handlers: dict):
        super().__init__(backend, searcher, scan_limit)
        self.handlers = handlers

    def docs_for_query(self, query):
        return self._addresses(self.backend.compile(query, self.searcher, handlers=self.handlers))


def _handlers() -> dict:
    """The compile handlers of one request: ``ValidAt``, and ``TermSet`` (the grant filter)
    compiled once however often the request's suggestion checks a word against it."""
    compiled = {}

    def term_set(compiler: Compiler, node: q.TermSet) -> tantivy.Query:
        key = (node.fieldname, tuple(node.btexts))
        if key not in compiled:
            compiled[key] = compile_term_set(compiler, node)
        return compiled[key]

    return {q.ValidAt: compile_valid_at, q.TermSet: term_set}


def compile_term_set(compiler: Compiler, node: q.TermSet) -> tantivy.Query:
    """``TermSet`` as a disjunction of its terms: for the grant filter's 200 readable paths
    (grants benchmark), tantivy searches it in a quarter of the time of its term-set query,
    which fills a bit set per segment."""
    terms = [compiler.term(wq.Term(node.fieldname, text)) for text in node.btexts]
    return tantivy.Query.boolean_query([(SHOULD, t) for t in terms]) if terms else tantivy.Query.empty_query()


def compile_valid_at(compiler: Compiler, node: q.ValidAt) -> tantivy.Query:
    """``ValidAt(child, T)`` as ``child`` filtered by ``mtime < T <= valid_until``: two ranges on
    columns (dates are stored as Whoosh's microsecond integers, so the comparison is exact)."""
    at = datetime_to_long(node.moment)
    integer = tantivy.FieldType.Integer
    written_before = tantivy.Query.range_query(
        compiler.schema, "mtime", integer, None, at, include_upper=False
    )
    still_valid = tantivy.Query.range_query(compiler.schema, "valid_until", integer, at, None)
    return must(compiler.compile(node.child), written_before, still_valid)


def _sort_by(request: q.SearchRequest) -> list[str] | None:
    if request.sort == "relevance":
        return None
    descending = "-" if request.sort.startswith("-") else ""
    return [descending + q.SORT_FIELDS[request.sort.lstrip("-")]]


def _highlighter(backend, searcher, compiled: tantivy.Query):
    """A function giving a hit's ``{field: snippet}`` from its stored fields: one fragment per
    field, HTML-escaped, the matched words in ``<mark>``; none for a field nothing matched in."""
    generators = {
        name: tantivy.SnippetGenerator.create(searcher, compiled, backend.tantivy_schema, name)
        for name in HIGHLIGHTED
    }

    def highlights(fields: dict) -> dict[str, str]:
        snippets = {}
        for name, generator in generators.items():
            text = fields.get(HIGHLIGHTED[name])
            if not text:
                continue
            snippet = generator.snippet_from_doc(tantivy.Document(**{name: text}))
            if snippet.highlighted():
                snippets[name] = render_snippet(snippet)
        return snippets

    return highlights


def facet_counts(backend, searcher, compiled: tantivy.Query, request: q.SearchRequest, work: q.Work) -> dict:
    """The counts of :attr:`.api.SearchPage.facets` over the matches of ``compiled``.

    The facets are the Whoosh engine's (:func:`.query._facets`, which picks the attribute
    values counted within its bounds): field facets become one terms aggregation on the
    columns, each attribute value a count of the matches that have it.
    """
    # The values of an attribute counted are among the first SEARCH_MAX_EXPANSION read.
    reader = backend.reader(searcher, scan_limit=app_settings.SEARCH_MAX_EXPANSION)
    fields, attributes = {}, {}
    for name, facet in q._facets(reader, request, work).items():
        if isinstance(facet, sorting.FieldFacet):
            fields[name] = facet.fieldname
        else:
            attribute = name.removeprefix("attr:")
            attributes[attribute] = {
                value: searcher.search(must(compiled, backend.compile(term, searcher)), 1, count=True).count
                for value, term in facet.querydict.items()
            }
    columns = backend._field_facets(searcher, compiled, dict.fromkeys(fields.values()))
    counts = {name: _ordered(dict(columns[fieldname])) for name, fieldname in fields.items()}
    counts["attributes"] = {a: _ordered(attributes.get(a, {})) for a in request.facets}
    return counts


def _ordered(groups: dict) -> list[tuple]:
    """Facet values with at least one match, most frequent first (as the Whoosh engine orders
    them)."""
    kept = ((k, v) for k, v in groups.items() if k is not None and v)
    return sorted(kept, key=lambda kv: (-kv[1], str(kv[0])))
