"""The app's Haystack engines, one module per search library.

- :mod:`versioned_items.search.backends.whoosh`: ``WhooshEngine``, the default, Haystack's
  Whoosh backend without its costs. ``versioned_items.search.backends.WhooshEngine`` (this
  package) names it too, so the ENGINE path the docs give stays short.
- ``versioned_items.search.backends.tantivy``: ``TantivyEngine``, the native engine (the
  ``tantivy`` extra), with ``tantivy_fields`` (the schema from the Haystack fields),
  ``tantivy_compile`` (Whoosh's query tree compiled to tantivy queries) and ``tantivy_reader``
  (a Whoosh-reader view of a searcher, for the bounded expansions and the suggestions);
  see docs/tantivy.md for what it does not do yet.

Importing this package imports Whoosh only; another engine's module imports its library when
that module is named in an ENGINE.
"""

from .whoosh import WhooshEngine, WhooshSearchBackend

__all__ = ["WhooshEngine", "WhooshSearchBackend"]
