"""The server process of the ``upload_memory`` scenario: ``python -m benchmarks.upload_server``.

It serves the admin (the run's settings, plus the admin, sessions and messages apps and their
middleware) with :mod:`wsgiref` on a free port of 127.0.0.1, and prints one JSON line on
start: the port, a session cookie of a superuser, and a CSRF secret to send as cookie and form
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
    from django.urls import path

    sys.modules["upload_server_urls"] = types.SimpleNamespace(urlpatterns=[path("admin/", admin.site.urls)])


def login_session() -> str:
    """The key of a new session of the superuser ``bench`` (created when missing)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # the admin's and the sessions' tables
    user = get_user_model().objects.filter(username="bench").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
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
    from django.core.wsgi import get_wsgi_application

    session = login_session()
    server = make_server("127.0.0.1", 0, application(get_wsgi_application()), handler_class=QuietHandler)
    print(json.dumps({"port": server.server_port, "session": session, "csrf": CSRF_SECRET}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
