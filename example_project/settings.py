"""Settings of the example site: a Django project that installs versioned_items.

Meant for trying the app on one machine (``make demo``), not for production as it stands.

Environment:

- ``VI_DATA_DIR``: where the SQLite database, uploaded content (``media/``) and the Whoosh
  indexes (``whoosh/``) live; default ``<repo>/data``.
- ``VI_SEARCH_ENGINE``: ``whoosh`` (the default) or ``tantivy``, the engine of the two search
  indexes (``tantivy`` needs the ``tantivy`` extra; its indexes live in ``tantivy/``); rebuild
  them after a switch with ``python manage.py vi_rebuild_index``.
- ``DATABASE_URL``: ``postgres://user:password@host:port/name`` to use PostgreSQL instead of
  SQLite (needs the ``postgres`` extra: ``pip install -e .[postgres]``).
- ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG`` (``0`` turns debug off), ``DJANGO_ALLOWED_HOSTS``
  (comma-separated).
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("VI_DATA_DIR", BASE_DIR / "data")).resolve()
# SQLite cannot create its file in a folder that does not exist.
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") != "0"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

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

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

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


def database_from_url(url: str) -> dict:
    """Django's DATABASES entry for a ``postgres://user:password@host:port/name`` URL.

    Raises ImproperlyConfigured for any other scheme or a URL without a database name.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(f"DATABASE_URL scheme {parts.scheme!r} is not supported; use postgres://")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no database (…/name)")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # JIT compilation would cost ~250 ms on every listing page: the planner's estimate for
        # the page query crosses jit_above_cost, though the query itself takes milliseconds.
        "OPTIONS": {"options": "-c jit=off"},
    }


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # IMMEDIATE: writers take the lock at BEGIN and wait for it (timeout seconds)
            # instead of failing with "database is locked" halfway through a transaction.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every page of the site needs a login: visitors go to the site's login page, and back to
# the folder browser after logging in or out.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "versioned_items:browse"
LOGOUT_REDIRECT_URL = "login"

# Haystack needs a "default" connection; the app's own indexes live beside it under whoosh/.
HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
        "PATH": str(DATA_DIR / "whoosh" / "default"),
    },
}

# Search (versioned_items.search): the latest and history indexes on connections of their own,
# with the app's Whoosh engine; the router sends nodes and versions there and leaves every
# other model to Haystack's default router.
# VI_SEARCH_ENGINE=tantivy puts them on the tantivy engine instead, under tantivy/ (the tantivy
# extra; docs/tantivy.md). Switching needs a rebuild: python manage.py vi_rebuild_index.
SEARCH_ENGINES = {
    "whoosh": "versioned_items.search.backends.WhooshEngine",
    "tantivy": "versioned_items.search.backends.tantivy.TantivyEngine",
}
SEARCH_ENGINE = os.environ.get("VI_SEARCH_ENGINE") or "whoosh"
if SEARCH_ENGINE not in SEARCH_ENGINES:
    raise ImproperlyConfigured(
        f"VI_SEARCH_ENGINE {SEARCH_ENGINE!r} is not one of {', '.join(SEARCH_ENGINES)}"
    )
for alias in ("vi_latest", "vi_history"):
    HAYSTACK_CONNECTIONS[alias] = {
        "ENGINE": SEARCH_ENGINES[SEARCH_ENGINE],
        "PATH": str(DATA_DIR / SEARCH_ENGINE / alias),
    }
HAYSTACK_ROUTERS = [
    "versioned_items.search.routers.VersionedItemsRouter",
    "haystack.routers.DefaultRouter",
]

# The demo lets every logged-in user read everything; grants (docs/permissions.md) add more.
VERSIONED_ITEMS = {"DEFAULT_ACCESS": "read"}
