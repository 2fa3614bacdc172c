"""versioned_items: a Django app for versioned items in a path tree, with full-text search.

The public API is in :mod:`versioned_items.api` (storage) and
:mod:`versioned_items.search.api` (search). Import them explicitly::

    from versioned_items import api
    api.put("docs/readme.txt", b"hello", user="alice")
"""

__version__ = "0.1.0"
