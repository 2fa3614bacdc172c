"""versioned_items.uploads: uploads stream to temporary files and stop at UPLOAD_MAX_BYTES,
through Django's test client with real multipart bodies, on a probe view and on the admin's
upload views; CSRF stays enforced."""

import os

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.test import Client
from django.urls import include, path, reverse

from versioned_items import api, uploads
from versioned_items.exceptions import InvalidArgument
from versioned_items.models import Node

from ..helpers import snapshot

pytestmark = pytest.mark.django_db

LIMIT = 1000


@uploads.limited
def probe(request):
    """What the view sees of an upload: each file's class, name, size and whether it is on disk."""
    if request.method == "GET":
        get_token(request)  # sets the CSRF cookie
        return HttpResponse("ok")
    files = [
        {
            "class": type(f).__name__,
            "name": f.name,
            "size": f.size,
            "on_disk": hasattr(f, "temporary_file_path"),
        }
        for f in request.FILES.getlist("file")
    ]
    return JsonResponse({"files": files, "note": request.POST.get("note")})


urlpatterns = [path("probe/", probe), path("", include("example_project.urls"))]


@pytest.fixture(autouse=True)
def limit(settings, tmp_path):
    settings.ROOT_URLCONF = __name__
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "UPLOAD_MAX_BYTES": LIMIT}
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    os.mkdir(settings.FILE_UPLOAD_TEMP_DIR)
    return LIMIT


def temporary_files(settings) -> list[str]:
    return os.listdir(settings.FILE_UPLOAD_TEMP_DIR)


def upload(name, size):
    return SimpleUploadedFile(name, b"x" * size)


def test_files_under_the_limit_go_to_temporary_files(client):
    response = client.post("/probe/", {"file": [upload("a.txt", 10), upload("b.txt", LIMIT)], "note": "n"})
    assert response.json() == {
        "files": [
            {"class": "TemporaryUploadedFile", "name": "a.txt", "size": 10, "on_disk": True},
            {"class": "TemporaryUploadedFile", "name": "b.txt", "size": LIMIT, "on_disk": True},
        ],
        "note": "n",
    }


def test_a_file_over_the_limit_is_refused_with_its_size_and_the_rest_still_parsed(client, settings):
    data = {"file": [upload("big.bin", 5 * LIMIT + 1), upload("small.txt", 3)], "note": "after the files"}
    response = client.post("/probe/", data)
    assert response.json() == {
        "files": [
            {"class": "RefusedUpload", "name": "big.bin", "size": 5 * LIMIT + 1, "on_disk": False},
            {"class": "TemporaryUploadedFile", "name": "small.txt", "size": 3, "on_disk": True},
        ],
        "note": "after the files",
    }
    assert temporary_files(settings) == []  # the refused file's temporary file went at once


def test_the_handler_stops_storing_at_the_limit():
    handler = uploads.LimitedUploadHandler()
    handler.new_file("file", "big.bin", "application/octet-stream", None)
    assert handler.receive_data_chunk(b"x" * 600, 0) is None  # stored, not passed on
    assert handler.file.tell() == 600
    assert handler.receive_data_chunk(b"x" * 600, 600) is None
    assert handler.file.closed  # the temporary file is deleted
    assert handler.receive_data_chunk(b"x" * 600, 1200) is None
    refused = handler.file_complete(1800)
    assert isinstance(refused, uploads.RefusedUpload) and refused.size == 1800


def test_a_refused_upload_cannot_be_written():
    refused = uploads.RefusedUpload("big.bin", 5000, LIMIT)
    before = snapshot()
    with pytest.raises(
        InvalidArgument, match=r"big.bin has 5000 bytes; the limit is 1000 bytes .*Nothing was uploaded"
    ):
        api.put("big.bin", refused)
    assert snapshot() == before
    with pytest.raises(Exception, match="the limit is 1000 bytes"):
        uploads.check(refused)


def test_csrf_is_still_checked(settings):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/probe/", {"file": [upload("a.txt", 1)]}).status_code == 403
    client.get("/probe/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post("/probe/", {"csrfmiddlewaretoken": token, "file": [upload("big.bin", 2 * LIMIT)]})
    assert response.status_code == 200
    assert response.json()["files"][0]["class"] == "RefusedUpload"


# --- the admin's upload views ----------------------------------------------------------------


@pytest.fixture
def docs():
    api.put("docs/a.txt", "one\n")
    return Node.objects.get(path="docs/a.txt")


def assert_refused(client, target, data, message):
    before, logged = snapshot(), LogEntry.objects.count()
    response = client.post(target, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert snapshot() == before and LogEntry.objects.count() == logged
    # The view installed the handler, and the form got the refused file, not its bytes.
    request = response.wsgi_request
    assert [type(h) for h in request.upload_handlers] == [uploads.LimitedUploadHandler]
    assert any(isinstance(f, uploads.RefusedUpload) for f in request.FILES.values())


def test_admin_add_refuses_a_file_over_the_limit_and_writes_nothing(admin_client, docs, settings):
    data = {
        "upload-folder": "docs",
        "upload-files": [upload("small.txt", 5), upload("big.bin", 3 * LIMIT)],
        "upload-comment": "two files",
        "_upload": "1",
    }
    message = "big.bin has 3000 bytes; the limit is 1000 bytes"
    assert_refused(admin_client, reverse("admin:versioned_items_node_add"), data, message)
    assert api.lookup("docs/small.txt") is None
    assert temporary_files(settings) == []


def test_admin_new_version_refuses_a_file_over_the_limit(admin_client, docs):
    target = reverse("admin:versioned_items_node_upload", args=[docs.pk])
    data = {"file": upload("a.txt", LIMIT + 1), "comment": "too big"}
    assert_refused(admin_client, target, data, "a.txt has 1001 bytes; the limit is 1000 bytes")
    response = admin_client.post(target, {"file": upload("a.txt", LIMIT), "comment": "fits"})
    assert response.status_code == 302
    assert api.lookup("docs/a.txt").size == LIMIT and api.lookup("docs/a.txt").comment == "fits"


def test_admin_upload_views_keep_their_csrf_check(admin_user, docs):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    before = snapshot()
    target = reverse("admin:versioned_items_node_upload", args=[docs.pk])
    assert client.post(target, {"file": upload("a.txt", 3)}).status_code == 403
    data = {"upload-folder": "docs", "upload-files": [upload("b.txt", 3)], "_upload": "1"}
    assert client.post(reverse("admin:versioned_items_node_add"), data).status_code == 403
    assert snapshot() == before
