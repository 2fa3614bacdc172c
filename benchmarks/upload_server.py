"""The server process of the ``upload_memory`` scenario: ``python -m benchmarks.upload_server``.

It serves the admin and the site's pages (the run's settings, plus the admin, sessions and
messages apps and their middleware) with :mod:`wsgiref` on a free port of 127.0.0.1, and prints
one JSON line on start: the port, a session cookie of a superuser (``session``, for the admin),
one of a user who is no superuser but has the ``write`` grant on the folder :data:`SITE_FOLDER`
(``site_session``, for the site's upload page), and a CSRF secret to send as cookie and form
field. Two extra paths measure the process itself:

- ``/__memory__/reset``: record the resident size (``VmRSS``) as the baseline and reset the
  kernel's peak (``VmHWM``) to it (``echo 5 > /proc/self/clear_refs``);
- ``/__memory__/peak``: ``{"baseline": ..., "peak": ..., "reset": ...}`` in bytes.

With ``--in-memory`` (the scenario's control) the upload views get Django's
``MemoryFileUploadHandler`` with no size bound instead, which holds each file whole: the figure
must then grow with the upload, which shows that the measurement sees memory an upload holds.

It runs until it is terminated.
"""

import json
import os
import sys
import types
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
from django.conf import settings

from . import settings as base

CSRF_SECRET = "b" * 32  # a 32-character secret: Django compares it with the cookie as it is

#: The folder the site's writer may write to (created on start).
SITE_FOLDER = "site-uploads"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # no access log on stderr
        pass


def status(field: str) -> int:
    """A field of ``/proc/self/status`` in bytes (``VmRSS``, ``VmHWM``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def configure() -> None:
    values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    values.update(
        INSTALLED_APPS=[
            *values["INSTALLED_APPS"],
            "django.contrib.admin",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        ROOT_URLCONF="upload_server_urls",
        LOGIN_URL="/admin/login/",
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        FILE_UPLOAD_TEMP_DIR=str(base.WORK_DIR / "upload-tmp"),
        VERSIONED_ITEMS={**values.get("VERSIONED_ITEMS", {}), "UPLOAD_MAX_BYTES": None},
    )
    os.makedirs(values["FILE_UPLOAD_TEMP_DIR"], exist_ok=True)
    settings.configure(**values)
    django.setup()
    from django.contrib import admin
    from django.urls import include, path

    sys.modules["upload_server_urls"] = types.SimpleNamespace(
        urlpatterns=[path("admin/", admin.site.urls), path("", include("versioned_items.site.urls"))]
    )


def login_session(username: str, superuser: bool) -> str:
    """The key of a new session of the user ``username`` (created when missing)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user = get_user_model().objects.filter(username=username).first()
    if user is None and superuser:
        user = get_user_model().objects.create_superuser(username, f"{username}@example.com", username)
    elif user is None:
        user = get_user_model().objects.create_user(username, password=username)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def application(django_app):
    state = {"baseline": None, "reset": False}

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/__memory__/reset":
            state["baseline"] = status("VmRSS")
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                state["reset"] = True
            except OSError:
                state["reset"] = False
            return answer(start_response, state)
        if environ["PATH_INFO"] == "/__memory__/peak":
            return answer(start_response, {**state, "peak": status("VmHWM")})
        return django_app(environ, start_response)

    return app


def answer(start_response, data: dict):
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def hold_uploads_in_memory() -> None:
    from django.core.files.uploadhandler import MemoryFileUploadHandler

    from versioned_items import uploads

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1 << 40
    uploads.upload_handlers = lambda request: [MemoryFileUploadHandler(request)]


def main() -> None:
    configure()
    if "--in-memory" in sys.argv[1:]:
        hold_uploads_in_memory()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    from versioned_items import api

    call_command("migrate", verbosity=0)  # the admin's and the sessions' tables
    session = login_session("bench", superuser=True)
    site_session = login_session("site-writer", superuser=False)
    if api.lookup_node(SITE_FOLDER) is None:
        api.create_node(SITE_FOLDER)
    api.grant(SITE_FOLDER, user="site-writer", level="write")
    server = make_server("127.0.0.1", 0, application(get_wsgi_application()), handler_class=QuietHandler)
    info = {"port": server.server_port, "session": session, "site_session": site_session, "csrf": CSRF_SECRET}
    print(json.dumps(info), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
