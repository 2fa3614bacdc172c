"""Fixtures shared by the whole suite. Domain helpers live in the test modules that use them."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def subprocess_env(django_db_setup) -> dict[str, str]:
    """Environment for a child process that must use this test run's database and files.

    Pass it as ``env=`` to ``subprocess.run``/``Popen``. The child uses this run's settings
    module and opens the test database, not the ``NAME`` it would otherwise use. It sees only
    what a test has committed, so such tests use ``transactional_db``.
    """
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = settings.SETTINGS_MODULE
    env["VI_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


#: Whether this run has the search app (tests/settings.py, ``VI_TEST_SEARCH``).
SEARCH = os.environ.get("VI_TEST_SEARCH", "1") != "0"

if SEARCH:
    # Fixtures of the search tests (versioned_items.search).
    from .search_fixtures import search_index  # noqa: E402,F401
else:
    collect_ignore_glob = ["search/*"]


def pytest_collection_modifyitems(config, items):
    """Without the search app, tests marked ``search`` are skipped (they need its pages or
    indexes); on another engine than Whoosh (``VI_TEST_ENGINE``), those marked ``whoosh_only``
    (tests of the Whoosh engine's own workings)."""
    from django.conf import settings

    if SEARCH and settings.ENGINE != "whoosh":
        skip = pytest.mark.skip(reason=f"tests the Whoosh engine itself (VI_TEST_ENGINE={settings.ENGINE})")
        for item in items:
            if "whoosh_only" in item.keywords:
                item.add_marker(skip)
    if SEARCH:
        return
    skip = pytest.mark.skip(reason="needs versioned_items.search (VI_TEST_SEARCH=0)")
    for item in items:
        if "search" in item.keywords or "search_index" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)
