"""Django settings for the benchmarks (``python -m benchmarks`` sets the environment first).

Environment, set by :mod:`benchmarks.env` for the main process and for every child it starts:

- ``VI_BENCH_DIR``: the run's work folder (SQLite file, content, Whoosh indexes);
- ``VI_BENCH_DB``: ``sqlite`` or ``postgres`` (libpq's ``PG*`` variables say where);
- ``VI_BENCH_DB_NAME``: the database the run created, for child processes;
- ``VI_BENCH_SIGNAL_PROCESSOR``: Haystack's signal processor (the realtime baseline sets it);
- ``VI_BENCH_STOCK=1``: the app's indexes live on the stock connections (baseline processes);
- ``VI_BENCH_ENGINE=tantivy``: the app's indexes live on the tantivy connections (see
  :mod:`benchmarks.engines`; the default, ``whoosh``, keeps them on the Whoosh ones).

Besides the app's two connections (``vi_latest``, ``vi_history``, the app's Whoosh engine) there
are two with Haystack's *stock* Whoosh engine (``stock_latest``, ``stock_history``). The
baselines point the app's ``LATEST_CONNECTION``/``HISTORY_CONNECTION`` settings at those, so
Haystack's own commands and ``SearchQuerySet`` index and search the very same SearchIndex
classes, model and documents. Where tantivy is installed, two more (``tv_latest``,
``tv_history``) have the app's tantivy engine, and the search scenarios run the app on those
too (:func:`benchmarks.engines.serving`).
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

WORK_DIR = Path(os.environ.get("VI_BENCH_DIR") or "/nonexistent-run-python-m-benchmarks")
REPO_ROOT = Path(__file__).resolve().parent.parent

SECRET_KEY = "versioned-items-benchmarks-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]


def tantivy_installed() -> bool:
    try:
        import tantivy  # noqa: F401
    except ImportError:
        return False
    return True


def search_available() -> bool:
    """Whether the search app is complete enough to install (its API module exists)."""
    return (REPO_ROOT / "versioned_items" / "search" / "api.py").exists()


SEARCH = search_available()

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "haystack",
    "versioned_items",
] + (["versioned_items.search"] if SEARCH else [])


def _database(vendor: str) -> dict:
    name = os.environ.get("VI_BENCH_DB_NAME")
    if vendor == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name or WORK_DIR / "bench.sqlite3",
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 120},
            "TEST": {"NAME": WORK_DIR / "bench.sqlite3"},
        }
    if vendor == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name or os.environ.get("PGDATABASE", "versioned_items"),
            "HOST": os.environ.get("PGHOST", ""),
            "PORT": os.environ.get("PGPORT", ""),
            "USER": os.environ.get("PGUSER", ""),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "TEST": {"NAME": "vi_bench"},
        }
    raise ImproperlyConfigured(f"VI_BENCH_DB={vendor!r}: use 'sqlite' or 'postgres'")


DATABASES = {"default": _database(os.environ.get("VI_BENCH_DB", "sqlite"))}

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": WORK_DIR / "media"},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

WHOOSH_DIR = WORK_DIR / "whoosh"
STOCK_ENGINE = "haystack.backends.whoosh_backend.WhooshEngine"
APP_ENGINE = "versioned_items.search.backends.WhooshEngine"
TANTIVY_DIR = WORK_DIR / "tantivy"
TANTIVY_ENGINE = "versioned_items.search.backends.tantivy.TantivyEngine"
TANTIVY = SEARCH and tantivy_installed()

HAYSTACK_CONNECTIONS = {
    "default": {"ENGINE": STOCK_ENGINE, "PATH": str(WHOOSH_DIR / "default")},
}
if SEARCH:
    HAYSTACK_CONNECTIONS |= {
        "vi_latest": {"ENGINE": APP_ENGINE, "PATH": str(WHOOSH_DIR / "vi_latest")},
        "vi_history": {"ENGINE": APP_ENGINE, "PATH": str(WHOOSH_DIR / "vi_history")},
        "stock_latest": {"ENGINE": STOCK_ENGINE, "PATH": str(WHOOSH_DIR / "stock_latest")},
        "stock_history": {"ENGINE": STOCK_ENGINE, "PATH": str(WHOOSH_DIR / "stock_history")},
    }
    HAYSTACK_ROUTERS = [
        "versioned_items.search.routers.VersionedItemsRouter",
        "haystack.routers.DefaultRouter",
    ]
if TANTIVY:
    HAYSTACK_CONNECTIONS |= {
        alias: {"ENGINE": TANTIVY_ENGINE, "PATH": str(TANTIVY_DIR / alias)}
        for alias in ("tv_latest", "tv_history")
    }
STOCK = os.environ.get("VI_BENCH_STOCK") == "1"
if STOCK:
    # Haystack asks every router for writes; without the default router behind ours, a save
    # goes to the model's stock connection only.
    HAYSTACK_ROUTERS = ["versioned_items.search.routers.VersionedItemsRouter"]
HAYSTACK_SIGNAL_PROCESSOR = os.environ.get(
    "VI_BENCH_SIGNAL_PROCESSOR", "haystack.signals.BaseSignalProcessor"
)

VERSIONED_ITEMS = {
    # A long bulk import may hold the apply lock for a while; nobody should give up on it.
    "SEARCH_LOCK_TIMEOUT": 3600.0,
}
if STOCK:
    VERSIONED_ITEMS |= {"LATEST_CONNECTION": "stock_latest", "HISTORY_CONNECTION": "stock_history"}
ENGINE = os.environ.get("VI_BENCH_ENGINE", "whoosh")
if ENGINE == "tantivy":
    VERSIONED_ITEMS |= {"LATEST_CONNECTION": "tv_latest", "HISTORY_CONNECTION": "tv_history"}
elif ENGINE != "whoosh":
    raise ImproperlyConfigured(f"VI_BENCH_ENGINE={ENGINE!r}: use 'whoosh' or 'tantivy'")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        # Haystack logs every indexing batch at INFO; the benchmarks print their own tables.
        "haystack": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "versioned_items": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
