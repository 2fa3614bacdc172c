"""Full-text search for versioned_items: a latest index and a history index, kept in step with
the database through an outbox (django-haystack, with the app's own Whoosh engine).

Add ``"versioned_items.search"`` to ``INSTALLED_APPS`` after ``"haystack"`` and
``"versioned_items"``. The search API is :func:`versioned_items.search.api.search`; the index
maintenance functions are in :mod:`versioned_items.search.indexing`. Setup and settings:
``docs/install.md`` and ``docs/search.md``.
"""
