"""The app's settings, read lazily from ``settings.VERSIONED_ITEMS``.

Values are looked up on every access, never copied at import time, so
``override_settings(VERSIONED_ITEMS={...})`` works in tests. Keys not given fall back to
:data:`DEFAULTS`::

    from versioned_items.conf import app_settings
    app_settings.STORAGE
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Alias in settings.STORAGES of the storage that keeps content, content-addressed.
    "STORAGE": "default",
    # Folder inside that storage under which content files are kept.
    "CONTENT_PREFIX": "versioned_items",
    # Bytes read and written per step when content is copied into the storage: the memory a
    # put or an import needs, whatever the size of the file.
    "CONTENT_CHUNK_BYTES": 1 << 20,
    # A content file found under its final name is trusted when its size matches and, if it is
    # at most this long, its SHA-256 (larger files are trusted by size; vi_check hashes them).
    "CONTENT_VERIFY_HASH_BYTES": 1 << 20,
    # fsync content files and their folder before a version refers to them (FileSystemStorage),
    # so that a power cut cannot leave a committed version with a missing or empty file.
    "CONTENT_FSYNC": True,
    # Seconds a content file must be unreferenced (or a staged temp file untouched) before
    # vi_check reports it and repair deletes it, so that an in-flight write is never collected.
    "ORPHAN_GRACE": 3600,
    # Times an outermost write operation is run again when it collides with a concurrent one
    # (a deadlock, a serialization failure, a racing insert of the same path) before it raises
    # ConcurrentUpdate; each retry waits a short random time that doubles (see locking.py).
    "WRITE_RETRIES": 5,
    # Largest file the admin accepts in one upload, in bytes (None: no limit). Django's upload
    # handlers keep uploads above FILE_UPLOAD_MAX_MEMORY_SIZE in temporary files, and the file
    # is streamed into the storage in CONTENT_CHUNK_BYTES steps: memory stays bounded anyway.
    "UPLOAD_MAX_BYTES": 1 << 30,
    # Largest text item the admin's "Edit text" page opens in a textarea, in bytes; a larger
    # one is changed by uploading a new version.
    "EDIT_MAX_BYTES": 1 << 20,
    # What every logged-in user may do where no grant, model permission or superuser status
    # gives more (docs/permissions.md): "" (nothing) or "read" (read every item, its history
    # and content).
    "DEFAULT_ACCESS": "",
    # --- search (versioned_items.search) ---
    # Haystack connection names of the two indexes.
    "LATEST_CONNECTION": "vi_latest",
    "HISTORY_CONNECTION": "vi_history",
    # Text extracted from one version is cut to this many characters (the cut is recorded).
    "EXTRACT_MAX_CHARS": 1_000_000,
    # Attribute keys ("domain.key", or "key" for the empty domain) offered as facets.
    "FACET_ATTRIBUTES": [],
    # True: index writes happen inside the caller's commit hook, before put() returns.
    # False: they are handed to a background applier (group commit); see docs/search.md.
    "SEARCH_SYNC": False,
    # Upper bound in seconds on how long a committed change may stay invisible to search.
    "SEARCH_MAX_LAG": 2.0,
    # Changes applied to the indexes per writer commit (outbox entries, or versions when
    # rebuilding). A round of the outbox reads what is pending, up to 32 times this
    # (outbox.MAX_ROUND_GROWTH): a single save is one small round, an import few large ones.
    "SEARCH_BATCH_SIZE": 500,
    # Seconds to wait for an index's write lock before raising IndexUnavailable. Writers wait
    # for each other instead of failing with Whoosh's LockError.
    "SEARCH_LOCK_TIMEOUT": 120.0,
    # Folder for the lock files that order index appliers and rebuilds across processes.
    # None: the folder that holds the latest connection's Whoosh PATH, else the temp folder.
    "SEARCH_LOCK_DIR": None,
    # --- limits on the work of one request (docs/limits.md); over a limit the request fails
    # with InvalidQuery / InvalidFilter naming the limit, instead of running for minutes ---
    # Characters of search query text (the search form's field has this max length).
    "SEARCH_MAX_QUERY_CHARS": 1000,
    # Words of search query text (separated by spaces; operators and parentheses not counted).
    "SEARCH_MAX_QUERY_WORDS": 50,
    # Index terms one wildcard, prefix or range term may match ("re*", "*port*", "[a TO c]").
    "SEARCH_MAX_EXPANSION": 1000,
    # Index terms read to find the matches of one such term: a leading wildcard ("*a*") reads
    # the field's whole vocabulary, which this bounds.
    "SEARCH_MAX_TERMS_SCANNED": 100_000,
    # Words longer than this get no spelling suggestion (their one-edit variants are many,
    # and a long unknown word is rarely a typo).
    "SUGGEST_MAX_WORD_CHARS": 40,
    # Candidates a query's spelling suggestion may try (one-edit variants looked up, index
    # terms compared): past it the suggestion stops with the corrections found so far.
    "SUGGEST_BUDGET": 20_000,
    # Line comparisons a diff may make (counted by diffs.BudgetedMatcher; about 0.2-0.8 us
    # each): beyond it the diff says "too large to compare" with the versions' sizes.
    "DIFF_MAX_COST": 5_000_000,
    # Terms of one attribute filter expression ("a=1, b, !c" has 3).
    "FILTER_MAX_TERMS": 50,
    # Values of one FACET_ATTRIBUTES attribute counted in a search's facets: the most frequent
    # in the index among the first SEARCH_MAX_EXPANSION values (in order) read for it.
    "FACET_MAX_VALUES": 50,
    # Versions larger than this (bytes) are not compared line by line: "too large to compare".
    "DIFF_MAX_BYTES": 2 * 1024 * 1024,
    # Lines of a diff shown; a longer diff is cut, and says so.
    "DIFF_MAX_LINES": 5000,
}


class AppSettings:
    """Attribute access to the app's settings, with defaults."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"versioned_items has no setting {name!r}")
        user = getattr(settings, "VERSIONED_ITEMS", {}) or {}
        return user.get(name, DEFAULTS[name])


app_settings = AppSettings()
