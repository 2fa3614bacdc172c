"""Fixtures and helpers of the search tests (imported by conftest.py)."""

import os

import pytest
from django.test import override_settings
from haystack import connections

from versioned_items.conf import app_settings
from versioned_items.search import indexing
from versioned_items.search.api import search

ALIASES = ("vi_latest", "vi_history")


def point_connections_at(folder) -> None:
    """Give both index connections the Whoosh folders under ``folder``."""
    for alias in ALIASES:
        connections.connections_info[alias]["PATH"] = str(folder / alias)
        connections.reload(alias)


@pytest.fixture
def search_index(tmp_path, settings):
    """Empty latest and history indexes of this test's own, applied synchronously.

    Writes made in a ``db`` test are not committed, so the test calls ``wait_for_index()``
    (or ``indexed()``) to apply them, exactly as a caller that wants to read its own writes.
    """
    # An applier thread of an earlier test has connections to that test's indexes.
    indexing.stop_background(10)
    saved = {alias: connections.connections_info[alias]["PATH"] for alias in ALIASES}
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "SEARCH_SYNC": True}
    point_connections_at(tmp_path)
    indexing.create_indexes()  # as migrate does for a new site
    yield tmp_path
    indexing.stop_background(10)
    for alias, path in saved.items():
        connections.connections_info[alias]["PATH"] = path
        connections.reload(alias)


def child_env(subprocess_env: dict, index_dir) -> dict:
    """``subprocess_env`` for a worker of tests.search_workers that uses this test's indexes."""
    env = dict(subprocess_env)
    # Under overridden settings, settings.SETTINGS_MODULE reads None: name the module here.
    env["DJANGO_SETTINGS_MODULE"] = os.environ.get("DJANGO_SETTINGS_MODULE") or "tests.settings"
    env["VI_SEARCH_INDEX_DIR"] = str(index_dir)
    return env


def indexed():
    """Apply what is pending; return the indexes' document ids as (latest paths, history serials)."""
    indexing.wait_for_index()
    return latest_paths(), history_serials()


def latest_paths() -> list[str]:
    return sorted(d["path_exact"] for d in indexing.dump())


def history_serials() -> list[int]:
    return sorted(d["serial"] for d in indexing.dump(history=True))


def history_docs() -> dict[int, dict]:
    return {d["serial"]: d for d in indexing.dump(history=True)}


def found(text="", **kwargs) -> list[str]:
    """Paths of the first page of ``search(text, **kwargs)``, in result order."""
    return [hit.path for hit in search(text, **kwargs)]


def assert_in_step():
    """Both indexes agree with the database, document by document, and nothing is pending."""
    diff = indexing.compare()
    assert diff.count == 0, diff
    assert indexing.pending_count() == 0


__all__ = ["search_index", "override_settings", "app_settings"]
