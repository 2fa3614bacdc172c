"""A tantivy searcher seen as a Whoosh reader and searcher, for code written against Whoosh.

The app's search code reads an index's vocabulary and documents through a few Whoosh methods:
``query.bound_expansions`` lists the terms a wildcard, prefix or range matches (and counts
them), and the spelling suggester (``query.suggest``) looks terms up, lists neighbours and
reads a document. :class:`TantivyReader` gives those methods over a tantivy searcher, so that
this code runs unchanged on the tantivy engine. Terms are given as UTF-8 bytes, as Whoosh gives
them.

Only the methods that code uses are here; tantivy lists terms by prefix only, so the others
(``lexicon``, ``terms_from``) list from the prefix they can, at most ``scan_limit`` terms.
"""

from collections.abc import Iterator

from whoosh.support.levenshtein import distance

from .tantivy_fields import NUMERIC


class TantivyReader:
    """A Whoosh reader (and searcher: :meth:`reader` is itself) over ``searcher`` of ``backend``
    (a TantivySearchBackend). ``scan_limit`` bounds the terms one listing reads from the index."""

    def __init__(self, backend, searcher, scan_limit: int | None = None):
        self.backend = backend
        self.searcher = searcher
        self.schema = backend.schema  # the Whoosh schema that parses queries
        self.scan_limit = scan_limit

    def reader(self) -> "TantivyReader":
        return self

    # --- terms ---

    def _terms(self, fieldname: str, prefix: str) -> list[str]:
        spec = self.backend.specs.get(fieldname)
        if spec is None or not spec.searchable or spec.kind in NUMERIC:
            return []
        found = self.searcher.terms_with_prefix(fieldname, prefix, limit=self.scan_limit)
        return [term for term, _ in found]

    def expand_prefix(self, fieldname: str, prefix) -> Iterator[bytes]:
        """The field's terms that start with ``prefix``, in order."""
        prefix = prefix.decode() if isinstance(prefix, bytes) else prefix
        for term in self._terms(fieldname, prefix):
            yield term.encode()

    def lexicon(self, fieldname: str) -> Iterator[bytes]:
        return self.expand_prefix(fieldname, "")

    def terms_from(self, fieldname: str, start: bytes) -> Iterator[tuple[str, bytes]]:
        """``(fieldname, term)`` for the field's terms from ``start`` on (read from the first)."""
        for term in self.lexicon(fieldname):
            if term >= start:
                yield fieldname, term

    def terms_within(self, fieldname: str, text: str, maxdist: int, prefix: int = 0) -> Iterator[bytes]:
        """The field's terms at most ``maxdist`` edits from ``text`` that share its first
        ``prefix`` characters."""
        for term in self._terms(fieldname, text[:prefix]):
            if distance(term, text, limit=maxdist) <= maxdist:
                yield term.encode()

    def __contains__(self, fieldterm) -> bool:
        return self.doc_frequency(*fieldterm) > 0

    def doc_frequency(self, fieldname: str, text) -> int:
        """Documents with the term, deleted ones included until their segment is merged (as in
        Whoosh)."""
        if fieldname not in self.backend.specs:
            return 0
        text = text.decode() if isinstance(text, bytes) else text
        return self.searcher.doc_freq(fieldname, text)

    # --- documents ---

    def doc_count(self) -> int:
        return self.searcher.num_docs

    def docs_for_query(self, q) -> Iterator:
        """The addresses of the live documents matching the Whoosh query ``q``, read in pages
        (a caller that takes the first reads one page)."""
        return self._addresses(self.backend.compile(q, self.searcher))

    def docs_stored(self, compiled) -> Iterator[dict]:
        """The stored fields of the documents matching the tantivy query ``compiled``."""
        for address in self._addresses(compiled):
            yield self.stored_fields(address)

    def _addresses(self, compiled) -> Iterator:
        offset, size = 0, 16
        while True:
            hits = self.searcher.search(compiled, size, count=False, offset=offset).hits
            for _, address in hits:
                yield address
            if len(hits) < size:
                return
            offset, size = offset + size, size * 4

    def stored_fields(self, address) -> dict:
        return self.backend.stored_fields(self.searcher.doc(address))
