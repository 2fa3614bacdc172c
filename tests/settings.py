"""Settings for the test suite.

The database is chosen by the environment, so the same suite runs on both:

- ``VI_TEST_DB=sqlite`` (default): a SQLite *file*, so that processes started by a test can open
  the database the test writes to;
- ``VI_TEST_DB=postgres``: PostgreSQL, reached through libpq's usual variables ``PGHOST``,
  ``PGPORT``, ``PGUSER``, ``PGPASSWORD`` and ``PGDATABASE`` (default ``versioned_items``).
  ``scripts/pg.sh`` starts a throw-away cluster and sets them.

Everything a test run writes (SQLite file, media, Whoosh indexes) goes under one temporary
directory, ``VI_TEST_TMPDIR``. The first process of a pytest run makes it and puts it in the
environment, so that xdist workers and processes started by tests use the same one; each xdist
worker then works in a subfolder of its own.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

if "VI_TEST_TMPDIR" not in os.environ:
    os.environ["VI_TEST_TMPDIR"] = tempfile.mkdtemp(prefix="vi-tests-")
    # Only the process that made the folder removes it, after its children are done.
    atexit.register(shutil.rmtree, os.environ["VI_TEST_TMPDIR"], ignore_errors=True)
TMP_DIR = Path(os.environ["VI_TEST_TMPDIR"]) / os.environ.get("PYTEST_XDIST_WORKER", "main")
TMP_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = "versioned-items-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "haystack",
    "versioned_items",
    "versioned_items.search",
]
#: ``VI_TEST_SEARCH=0``: the suite without the search app (and Haystack), as a site that installs
#: only the core has it. ``scripts/test.sh`` runs the core, site and admin tests that way too.
SEARCH = os.environ.get("VI_TEST_SEARCH", "1") != "0"
if not SEARCH:
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in ("haystack", "versioned_items.search")]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The tests drive the same site a user sees.
ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(vendor: str) -> dict:
    """The ``default`` database for ``VI_TEST_DB=vendor``."""
    # Processes started by a test open this NAME; conftest's subprocess_env points it at the
    # test database that the test runner created.
    name = os.environ.get("VI_TEST_DB_NAME")
    if vendor == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name or TMP_DIR / "db.sqlite3",
            # IMMEDIATE: a writing transaction takes the write lock at BEGIN, so concurrent
            # writers wait (up to timeout seconds) instead of failing with "database is locked"
            # when a read lock cannot be upgraded.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
            # A file, not Django's default in-memory test database, which no other process sees.
            "TEST": {"NAME": TMP_DIR / "test.sqlite3"},
        }
    if vendor == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name or os.environ.get("PGDATABASE", "versioned_items"),
            # Empty values let libpq fall back to its own defaults (local socket, OS user).
            "HOST": os.environ.get("PGHOST", ""),
            "PORT": os.environ.get("PGPORT", ""),
            "USER": os.environ.get("PGUSER", ""),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
        }
    raise ImproperlyConfigured(
        f"VI_TEST_DB={vendor!r} is not supported; use 'sqlite' (the default) or 'postgres'."
    )


DATABASES = {"default": _database(os.environ.get("VI_TEST_DB", "sqlite"))}

MEDIA_ROOT = TMP_DIR / "media"
STATIC_URL = "/static/"
STATIC_ROOT = TMP_DIR / "static"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

# Hashing with MD5 makes creating users in tests cheap; never use it outside tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Haystack needs a "default" connection. The app's own connections (vi_latest, vi_history) are
# added next to it by the search work.
HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
        "PATH": str(TMP_DIR / "whoosh" / "default"),
    },
}

# Search (versioned_items.search): the latest and history indexes on connections of their own,
# with the app's Whoosh engine; the router sends nodes and versions there and leaves every
# other model to Haystack's default router.
# ``VI_TEST_ENGINE=tantivy`` puts both on the tantivy engine, to run the search suite on it
# (``scripts/test.sh`` does, as its "tantivy" run); tests of one engine's own workings are
# marked ``whoosh_only``.
ENGINES = {
    "whoosh": "versioned_items.search.backends.WhooshEngine",
    "tantivy": "versioned_items.search.backends.tantivy.TantivyEngine",
}
ENGINE = os.environ.get("VI_TEST_ENGINE", "whoosh")
if ENGINE not in ENGINES:
    raise ImproperlyConfigured(f"VI_TEST_ENGINE={ENGINE!r} is not one of {', '.join(ENGINES)}")
for _alias in ("vi_latest", "vi_history"):
    HAYSTACK_CONNECTIONS[_alias] = {"ENGINE": ENGINES[ENGINE], "PATH": str(TMP_DIR / ENGINE / _alias)}
HAYSTACK_ROUTERS = [
    "versioned_items.search.routers.VersionedItemsRouter",
    "haystack.routers.DefaultRouter",
]

# The site's tests log in plain users who read (they are not about permissions); the tests of
# permissions (tests/site/test_permissions.py, tests/core/test_grants.py) set "" again.
VERSIONED_ITEMS = {"DEFAULT_ACCESS": "read"}
