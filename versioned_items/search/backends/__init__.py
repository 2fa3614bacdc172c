"""The app's Haystack engines, one module per search library.

- :mod:`versioned_items.search.backends.whoosh`: ``WhooshEngine``, the default, Haystack's
  Whoosh backend without its costs. ``versioned_items.search.backends.WhooshEngine`` (this
  package) names it too, so the ENGINE path the docs give stays short.

Importing this package imports Whoosh only; another engine's module imports its library when
that module is named in an ENGINE.
"""

from .whoosh import WhooshEngine, WhooshSearchBackend

__all__ = ["WhooshEngine", "WhooshSearchBackend"]
