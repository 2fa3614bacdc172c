"""Whoosh query trees compiled into tantivy queries.

tantivy's own query parser cannot serve here: it silently turns ``bra*`` into the term ``bra``,
``ab*cd`` and ``foo~1`` into phrases, and cannot route dotted attribute names. So query text
is parsed by Whoosh's pure-Python parser (with a schema whose analyzers are tantivy's, see
:mod:`.tantivy_fields`) and the tree it gives is compiled here, node by node. The same
compiler takes the trees that code builds with ``whoosh.query`` directly.

Scores: tantivy sums the scores of a boolean query's clauses as Whoosh does; ranges,
wildcards and prefixes score as constants in both.
"""

import os

import tantivy
from whoosh import query as wq

from versioned_items.exceptions import InvalidQuery

from .tantivy_fields import NUMERIC, FieldSpec, regex_escape

Q = tantivy.Query
MUST, SHOULD, MUST_NOT = tantivy.Occur.Must, tantivy.Occur.Should, tantivy.Occur.MustNot

_RANGE_TYPES = {
    "int": tantivy.FieldType.Integer,
    "date": tantivy.FieldType.Integer,
    "float": tantivy.FieldType.Float,
    "bool": tantivy.FieldType.Boolean,
}

# Index terms a text range (``name:[a TO c]``) may expand to; tantivy has no range on text.
MAX_RANGE_TERMS = 10_000


def must(query: tantivy.Query, *filters: tantivy.Query) -> tantivy.Query:
    """``query`` that must also match every filter, which adds nothing to the score."""
    if not filters:
        return query
    return Q.boolean_query([(MUST, query)] + [(MUST, Q.const_score_query(f, 0.0)) for f in filters])


class Compiler:
    """Compiles Whoosh query trees for one index: its tantivy schema and field specs, and a
    searcher for the few nodes that need the index's terms (text ranges).

    ``handlers`` compiles node types of the caller's own: ``{type: handler(compiler, node)}``
    (the app's ``ValidAt`` wrapper, say). A multi-term node whose terms were already listed
    (it has ``btexts``, as ``query.ExpandedTerms`` has) becomes a set of those terms.
    """

    def __init__(
        self,
        schema: tantivy.Schema,
        specs: dict[str, FieldSpec],
        whoosh_schema,
        searcher=None,
        handlers: dict | None = None,
    ):
        self.schema = schema
        self.specs = specs
        self.whoosh_schema = whoosh_schema
        self.searcher = searcher
        self.handlers = handlers or {}

    def compile(self, q: wq.Query) -> tantivy.Query:
        """The tantivy query for ``q``. Raises InvalidQuery for a node it cannot run."""
        compiled = self._node(q)
        boost = getattr(q, "boost", 1.0)
        if boost != 1.0 and not isinstance(q, wq.ConstantScoreQuery):
            compiled = Q.boost_query(compiled, float(boost))
        return compiled

    def _node(self, q: wq.Query) -> tantivy.Query:
        handler = self.handlers.get(type(q))
        if handler is not None:
            return handler(self, q)
        if isinstance(q, wq.MultiTerm) and isinstance(getattr(q, "btexts", None), list):
            return self.listed_terms(q)
        # Exact types first: DateRange is a NumericRange, FuzzyTerm and Variations are terms.
        handler = _HANDLERS.get(type(q))
        if handler is None:
            handler = next((h for kind, h in _HANDLERS.items() if isinstance(q, kind)), None)
        if handler is None:
            raise InvalidQuery(
                f"the tantivy engine cannot run the Whoosh query {q!r} "
                f"({type(q).__name__}); see docs/tantivy.md"
            )
        return handler(self, q)

    # --- leaves ---

    def _spec(self, fieldname: str) -> FieldSpec | None:
        spec = self.specs.get(fieldname)
        return spec if spec is not None and spec.searchable else None

    def term(self, q: wq.Term) -> tantivy.Query:
        spec = self._spec(q.fieldname)
        if spec is None:
            return Q.empty_query()
        return Q.term_query(self.schema, q.fieldname, self._value(spec, q.fieldname, q.text))

    def _value(self, spec: FieldSpec, fieldname: str, value):
        """A term's value as tantivy compares it (Whoosh gives numbers as sortable bytes)."""
        if spec.kind in NUMERIC:
            if isinstance(value, bytes):
                value = self.whoosh_schema[fieldname].from_bytes(value)
            return spec.term_value(value) if spec.kind != "date" or not isinstance(value, int) else value
        return value.decode() if isinstance(value, bytes) else str(value)

    def listed_terms(self, q) -> tantivy.Query:
        """A wildcard, prefix or range whose matching terms were listed beforehand."""
        spec = self._spec(q.fieldname)
        if spec is None or not q.btexts:
            return Q.empty_query()
        terms = [t.decode() if isinstance(t, bytes) else t for t in q.btexts]
        return Q.term_set_query(self.schema, q.fieldname, terms)

    def phrase(self, q: wq.Phrase) -> tantivy.Query:
        spec = self._spec(q.fieldname)
        if spec is None or not q.words:
            return Q.empty_query()
        if len(q.words) == 1:
            return Q.term_query(self.schema, q.fieldname, q.words[0])
        # Whoosh's slop 1 means "adjacent", tantivy's 0.
        return Q.phrase_query(self.schema, q.fieldname, list(q.words), slop=max(0, q.slop - 1))

    def prefix(self, q: wq.Prefix) -> tantivy.Query:
        return self._regex(q, regex_escape(q.text) + ".*")

    def wildcard(self, q: wq.Wildcard) -> tantivy.Query:
        pattern = "".join(".*" if c == "*" else "." if c == "?" else regex_escape(c) for c in q.text)
        return self._regex(q, pattern)

    def _regex(self, q, pattern: str) -> tantivy.Query:
        spec = self._spec(q.fieldname)
        if spec is None:
            return Q.empty_query()
        if spec.kind in NUMERIC:
            raise InvalidQuery(
                f"the field {q.fieldname!r} holds numbers or dates: give it a value or a "
                f"range, not the pattern {q.text!r}"
            )
        return Q.regex_query(self.schema, q.fieldname, pattern)

    def fuzzy(self, q: wq.FuzzyTerm) -> tantivy.Query:
        if self._spec(q.fieldname) is None:
            return Q.empty_query()
        # tantivy's automata go up to 2 edits.
        return Q.fuzzy_term_query(
            self.schema, q.fieldname, q.text, distance=min(2, q.maxdist), transposition_cost_one=True
        )

    def numeric_range(self, q: wq.NumericRange) -> tantivy.Query:
        spec = self._spec(q.fieldname)
        if spec is None:
            return Q.empty_query()
        if spec.kind not in NUMERIC:
            return self.term_range(q)
        low, high = self._bound(spec, q.start), self._bound(spec, q.end)
        # tantivy refuses an open end marked exclusive.
        return Q.range_query(
            self.schema,
            q.fieldname,
            _RANGE_TYPES[spec.kind],
            low,
            high,
            include_lower=low is None or not q.startexcl,
            include_upper=high is None or not q.endexcl,
        )

    @staticmethod
    def _bound(spec: FieldSpec, value):
        if value is None:
            return None
        return int(value) if spec.kind in ("int", "date") else spec.term_value(value)

    def term_range(self, q) -> tantivy.Query:
        """A range over text terms: tantivy has none, so the matching terms are listed."""
        spec = self._spec(q.fieldname)
        if spec is None:
            return Q.empty_query()
        if self.searcher is None:
            raise InvalidQuery(f"a range on the text field {q.fieldname!r} needs the index to be read")
        start, end = (None if v is None else str(v) for v in (q.start, q.end))
        prefix = os.path.commonprefix([start, end]) if start and end else ""
        terms = []
        for term, _ in self.searcher.terms_with_prefix(q.fieldname, prefix, limit=MAX_RANGE_TERMS + 1):
            if start is not None and (term < start or (q.startexcl and term == start)):
                continue
            if end is not None and (term > end or (q.endexcl and term == end)):
                continue
            terms.append(term)
        if len(terms) > MAX_RANGE_TERMS:
            raise InvalidQuery(f"the range {q!r} matches more than {MAX_RANGE_TERMS:,} words of the index")
        return Q.term_set_query(self.schema, q.fieldname, terms) if terms else Q.empty_query()

    # --- compounds ---

    def conjunction(self, q: wq.And) -> tantivy.Query:
        clauses = [
            (MUST_NOT, self.compile(c.query)) if isinstance(c, wq.Not) else (MUST, self.compile(c))
            for c in q.subqueries
        ]
        return _boolean(clauses)

    def disjunction(self, q: wq.Or) -> tantivy.Query:
        clauses = [(SHOULD, self.compile(c)) for c in q.subqueries]
        if not clauses:
            return Q.empty_query()
        minmatch = getattr(q, "minmatch", 0) or None
        return Q.boolean_query(clauses, minimum_number_should_match=minmatch)

    def negation(self, q: wq.Not) -> tantivy.Query:
        return _boolean([(MUST_NOT, self.compile(q.query))])

    def and_not(self, q: wq.AndNot) -> tantivy.Query:
        return _boolean([(MUST, self.compile(q.a)), (MUST_NOT, self.compile(q.b))])

    def and_maybe(self, q: wq.AndMaybe) -> tantivy.Query:
        return Q.boolean_query([(MUST, self.compile(q.a)), (SHOULD, self.compile(q.b))])

    def require(self, q: wq.Require) -> tantivy.Query:
        # Whoosh: matches of a that b also matches, scored by a alone.
        return must(self.compile(q.a), self.compile(q.b))

    def dismax(self, q: wq.DisjunctionMax) -> tantivy.Query:
        return Q.disjunction_max_query([self.compile(c) for c in q.subqueries], tie_breaker=q.tiebreak)

    def constant(self, q: wq.ConstantScoreQuery) -> tantivy.Query:
        return Q.const_score_query(self.compile(q.child), float(q.score))


def _boolean(clauses: list) -> tantivy.Query:
    """A boolean query; one with only MustNot clauses excludes from every document (tantivy would
    match nothing)."""
    if not clauses:
        return Q.empty_query()
    if all(occur == MUST_NOT for occur, _ in clauses):
        clauses = [(MUST, Q.all_query())] + clauses
    return Q.boolean_query(clauses)


_HANDLERS = {
    wq.Term: Compiler.term,
    wq.Phrase: Compiler.phrase,
    wq.Prefix: Compiler.prefix,
    wq.Wildcard: Compiler.wildcard,
    wq.FuzzyTerm: Compiler.fuzzy,
    wq.NumericRange: Compiler.numeric_range,
    wq.TermRange: Compiler.term_range,
    wq.And: Compiler.conjunction,
    wq.Or: Compiler.disjunction,
    wq.Not: Compiler.negation,
    wq.AndNot: Compiler.and_not,
    wq.AndMaybe: Compiler.and_maybe,
    wq.Require: Compiler.require,
    wq.DisjunctionMax: Compiler.dismax,
    wq.ConstantScoreQuery: Compiler.constant,
    wq.Every: lambda self, q: Q.all_query(),
    type(wq.NullQuery): lambda self, q: Q.empty_query(),
}
