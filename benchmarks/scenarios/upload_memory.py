"""Peak memory of a server process that receives a large upload through the admin's Add page,
and through the site's upload page.

A server process (:mod:`benchmarks.upload_server`: the run's settings and database, the admin
and the site, wsgiref) is started; this process logs in with a session it prints and first
uploads a 1 MB file (so that templates, imports and the connection are loaded), then asks the
server to record its resident size and reset the kernel's peak, streams one multipart POST with
a file of ``--memory-mb`` MB (200 in a full run) to the upload page (sent a chunk at a time: this
process does not hold it either), and reads the server's peak. The admin's page
(``/admin/versioned_items/node/add/``) is posted by a superuser; the site's
(``versioned_items:upload``, ``/upload/<folder>``) by a user who is no superuser, with the
``write`` grant on the folder, so that the grant checks run as they do for most writers. The figure is peak
minus baseline: what receiving the upload (Django's parser, ``versioned_items.uploads``' handler,
the temporary file) and storing it (``api.put``: chunked copy and hashing) cost on top of an idle
server. The upload must be answered with the redirect of a successful write, and the stored
version must have the file's size.

Target: at most 64 MB above the baseline for each page (issue 11). There is no "before" code (Django's own
handlers stream large files to disk too; the risk guarded against is a change that reads an
upload whole somewhere between the request and the storage). A control row runs the same upload
against a server whose upload views hold files in memory (``upload_server --in-memory``): its
figure must be about the upload's size, or the measurement would be blind.
"""

import http.client
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

from ..env import REPO_ROOT, child_env, reset_store
from ..report import Result

TARGET_MB = 64
MB = 1 << 20


@dataclass(frozen=True)
class Page:
    """An upload page: where to POST, its form's fields besides the file, the file's field,
    the session to send (a key of the server's start line) and the folder the file goes to."""

    label: str
    url: str
    fields: dict
    file_field: str
    session: str
    folder: str


#: The admin's Add page, as a superuser.
ADMIN = Page(
    "the admin's Add page",
    "/admin/versioned_items/node/add/",
    {"upload-folder": "uploads", "_upload": "1"},
    "upload-files",
    "session",
    "uploads",
)
#: The site's upload page (``versioned_items:upload``), as a writer of the folder only.
SITE = Page(
    "the site's upload page",
    "/upload/site-uploads",
    {"comment": "benchmark"},
    "files",
    "site_session",
    "site-uploads",
)


def run(options, result: Result) -> None:
    size = options.memory_mb * MB
    table = result.table(
        "peak resident memory of the server above its baseline (MB)",
        "upload",
        "server baseline RSS",
        "peak above baseline",
    )
    for page, name in ((ADMIN, "admin"), (SITE, "site")):
        above, baseline = _measure(size, result, page)
        table.add(f"{options.memory_mb} MB file through {page.label}", baseline, above)
        result.target(f"upload ({name}): peak above baseline", above, "<=", TARGET_MB, " MB")
    control, baseline = _measure(size, result, ADMIN, "--in-memory")
    table.add("control: the same, files held in memory", baseline, control)
    if control < options.memory_mb / 2:
        result.notes.append(
            f"the control held {control:.1f} MB for a {options.memory_mb} MB upload: the figures are suspect"
        )
    result.corpus = {"upload MB": options.memory_mb}


def _measure(size: int, result: Result, page: Page, *server_args: str) -> tuple[float, float]:
    """(peak above baseline, baseline), in MB, of a fresh server receiving an upload of ``size``
    through ``page``."""
    reset_store()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.upload_server", *server_args],
        env=child_env(),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"the upload server did not start:\n{server.stderr.read()[-4000:]}")
        info = json.loads(line)
        client = Client(info, page)
        client.upload("warm-up.bin", MB)
        client.get("/__memory__/reset")
        status = client.upload("upload.bin", size)
        memory = client.get("/__memory__/peak")
    finally:
        server.terminate()
        server.wait(timeout=60)
        _drop_admin_tables()
    if status != 302:
        raise RuntimeError(f"the upload was answered with HTTP {status}, not the redirect of a write")
    _check_stored(f"{page.folder}/upload.bin", size)
    if not memory["reset"]:
        result.notes.append("the kernel's peak could not be reset: the figure includes start-up")
    return (memory["peak"] - memory["baseline"]) / MB, memory["baseline"] / MB


def _drop_admin_tables() -> None:
    """Drop the tables the server's ``migrate`` made for the apps this process does not install
    (the admin's log and the sessions), and forget their migrations: the admin's log refers to
    users, and the next scenario's ``flush`` (PostgreSQL's ``TRUNCATE``) would fail on it."""
    from django.db import connection

    tables = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for table in ("django_admin_log", "django_session"):
            if table in tables:
                cursor.execute(f"DROP TABLE {connection.ops.quote_name(table)}")
        cursor.execute("DELETE FROM django_migrations WHERE app IN ('admin', 'sessions')")


def _check_stored(path: str, size: int) -> None:
    from versioned_items import api

    version = api.lookup(path)
    if version is None or version.size != size:
        raise RuntimeError(f"the uploaded file was not stored whole: {version!r}")


class Client:
    """HTTP requests to the upload server with the session of ``page`` and the CSRF cookie."""

    def __init__(self, info: dict, page: Page):
        self.port, self.page = info["port"], page
        self.csrf = info["csrf"]
        self.cookies = f"sessionid={info[page.session]}; csrftoken={self.csrf}"

    def get(self, path: str) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            connection.request("GET", path)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def upload(self, name: str, size: int) -> int:
        """POST the page's upload form with a file of ``size`` random bytes, streamed a
        megabyte at a time; return the HTTP status."""
        boundary = uuid.uuid4().hex
        fields = {"csrfmiddlewaretoken": self.csrf, **self.page.fields}
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
            for key, value in fields.items()
        )
        head += (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{self.page.file_field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        tail = f"\r\n--{boundary}--\r\n".encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)
        try:
            connection.putrequest("POST", self.page.url)
            connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            connection.putheader("Content-Length", str(len(head.encode()) + size + len(tail)))
            connection.putheader("Cookie", self.cookies)
            connection.endheaders()
            connection.send(head.encode())
            for start in range(0, size, MB):
                connection.send(os.urandom(min(MB, size - start)))
            connection.send(tail)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()
