"""Fixtures of the search tests that put the app's two connections on a chosen engine, whatever
``VI_TEST_ENGINE`` says (the tests of the tantivy engine next to Whoosh). The fixture of an
index on the configured engine, ``search_index``, is in ``tests/search_fixtures.py``."""

import pytest
from haystack import connections

from versioned_items.search import indexing

from ..search_fixtures import ALIASES


@pytest.fixture
def use_engine(settings):
    """A function ``use(engine, folder)`` that puts both connections on ``engine`` (a key of
    ``tests.settings.ENGINES``), their indexes in ``folder`` (none is created); writes are
    applied synchronously. The connections are restored after the test."""
    # An applier thread of an earlier test has connections to that test's indexes.
    indexing.stop_background(10)
    saved = {alias: dict(connections.connections_info[alias]) for alias in ALIASES}
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "SEARCH_SYNC": True}

    def use(engine: str, folder) -> None:
        for alias in ALIASES:
            connections.connections_info[alias] = {
                "ENGINE": settings.ENGINES[engine],
                "PATH": str(folder / alias),
            }
            connections.reload(alias)

    yield use
    indexing.stop_background(10)
    for alias, info in saved.items():
        connections.connections_info[alias] = info
        connections.reload(alias)


@pytest.fixture
def on_tantivy(use_engine, tmp_path):
    """Both connections on the tantivy engine, in tmp_path (no index yet); returns tmp_path."""
    use_engine("tantivy", tmp_path)
    return tmp_path


@pytest.fixture
def tantivy_index(on_tantivy):
    """Both tantivy indexes created, as migrate creates them for a new site."""
    indexing.create_indexes()
    return on_tantivy
