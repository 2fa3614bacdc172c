"""The site's writes (versioned_items.site.writes): who may do what, every form's rejections
(nothing written), the library's refusals in the user's terms, and query counts."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from versioned_items import api
from versioned_items.models import Node, Version
from versioned_items.site import views, writes

from ..helpers import assert_statistics_exact, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_default_access(settings):
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "DEFAULT_ACCESS": ""}


@pytest.fixture
def tree():
    """team/a.txt (two versions), team/logo.png, team/gone.txt (deleted), team/sub/b.txt,
    secret/s.txt."""
    with api.batch():
        old = api.put("team/a.txt", "one\n", user="ann")
        new = api.put("team/a.txt", "two\n", user="bob", content_type="text/x-notes")
        api.put("team/logo.png", b"\x89PNG\x00\x00")
        api.put("team/gone.txt", "bye\n", user="ann")
        api.delete("team/gone.txt", user="bob", comment="not needed")
        api.put("team/sub/b.txt", "b\n")
        api.put("secret/s.txt", "hidden\n")
    return {"old": old.serial, "new": new.serial}


def as_user(client, django_user_model, level, path="team"):
    user = django_user_model.objects.create_user(f"user-{level or 'none'}")
    if level:
        api.grant(path, user=user, level=level)
    client.force_login(user)
    return client


@pytest.fixture
def writer(client, django_user_model, tree):
    return as_user(client, django_user_model, "write")


@pytest.fixture
def manager(client, django_user_model, tree):
    return as_user(client, django_user_model, "manage")


def url(name, *args):
    return reverse(f"versioned_items:{name}", args=args)


def upload(name="new.txt", content=b"new\n"):
    return SimpleUploadedFile(name, content, content_type="text/plain")


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def rejected(client, target, data, message, status=400):
    """POST ``data`` to ``target``: the page answers ``status`` with ``message`` and nothing
    is written."""
    before = snapshot()
    response = client.post(target, data)
    assert response.status_code == status, response.content.decode()[:2000]
    assert message in response.content.decode()
    assert snapshot() == before
    return response


# --- who may do what -------------------------------------------------------------------------


def write_pages():
    """Each write page (GET) and its write (POST data), on paths below team/."""
    return {
        "upload": (url("upload", "team"), {"files": [upload()], "comment": "c"}),
        "new_folder": (url("new_folder", "team"), {"path": "team/docs"}),
        "new_version": (url("new_version", "team/a.txt"), {"file": upload("a.txt"), "comment": "c"}),
        "edit": (url("edit", "team/a.txt"), None),  # its data needs the current serial
        "delete": (url("delete", "team/a.txt"), {"comment": "c"}),
        "move": (url("move", "team/a.txt"), {"destination": "team/b.txt", "confirm": "1"}),
        "copy": (url("copy", "team/a.txt"), {"destination": "team/c.txt"}),
        "undelete": (url("undelete", "team/gone.txt"), {}),
        "purge": (url("purge", "team/gone.txt"), {}),
    }


def post_data(name, data, tree):
    if name == "edit":
        return {"text": "three\n", "base": tree["new"], "comment": "c"}
    return data


def test_anonymous_users_are_sent_to_log_in_and_write_nothing(client, tree):
    before = snapshot()
    for name, (target, data) in write_pages().items():
        for response in (client.get(target), client.post(target, post_data(name, data, tree))):
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], name
    assert client.get(url("bin", "team")).status_code == 302
    assert snapshot() == before


def test_without_grants_every_write_is_a_404_and_writes_nothing(client, django_user_model, tree):
    as_user(client, django_user_model, "")
    before = snapshot()
    for name, (target, data) in write_pages().items():
        if name != "undelete":  # POST only
            assert client.get(target).status_code == 404, name
        assert client.post(target, post_data(name, data, tree)).status_code == 404, name
    assert client.get(url("bin", "team")).context["rows"] == []
    assert snapshot() == before


def test_a_reader_sees_no_write_buttons_and_is_refused_with_403(client, django_user_model, tree):
    as_user(client, django_user_model, "read")
    before = snapshot()
    for name, (target, data) in write_pages().items():
        if name not in ("undelete", "copy"):  # undelete is POST only; copy reads, then needs write
            assert client.get(target).status_code == 403, name
        status = client.post(target, post_data(name, data, tree)).status_code
        assert status == 403, name
    assert snapshot() == before
    for page in (url("browse", "team/"), url("item", "team/a.txt"), url("item", "team/gone.txt")):
        html = client.get(page).content.decode()
        for name in ("upload", "new_folder", "edit", "delete", "move", "copy", "purge", "new_version"):
            assert f'href="/{name.replace("_", "-")}/' not in html and f'action="/{name}/' not in html, page
        assert "/undelete/" not in html
    response = client.get(url("bin", "team"))
    assert [name for name, _entry in response.context["rows"]] == ["gone.txt"]
    assert "Undelete" not in response.content.decode() and "/purge/" not in response.content.decode()


def test_a_writer_gets_every_write_but_purge(writer, tree):
    for name, (target, _data) in write_pages().items():
        if name != "undelete":
            assert writer.get(target).status_code == (403 if name == "purge" else 200), name
    before = snapshot()
    assert writer.post(*purge_request()).status_code == 403
    assert snapshot() == before
    html = writer.get(url("item", "team/a.txt")).content.decode()
    for name in ("edit", "delete", "move", "copy", "new-version"):
        assert f'href="/{name}/team/a.txt"' in html, name
    assert "Purge" not in writer.get(url("bin", "team")).content.decode()
    assert 'action="/upload/team"' in writer.get(url("browse", "team/")).content.decode()


def purge_request():
    return url("purge", "team/gone.txt"), {}


def test_a_writer_may_not_write_outside_their_grant(writer, tree):
    before = snapshot()
    rejected(writer, url("copy", "team/a.txt"), {"destination": "other/a.txt"}, "You may not write at", 403)
    data = {"destination": "other/a.txt", "confirm": "1"}
    rejected(writer, url("move", "team/a.txt"), data, "You may not write at", 403)
    rejected(writer, url("new_folder", "team"), {"path": "other/x"}, "You may not write at", 403)
    assert writer.post(url("delete", "secret/s.txt"), {}).status_code == 404
    assert snapshot() == before


def test_writes_need_the_csrf_token(django_user_model, tree):
    client = Client(enforce_csrf_checks=True)
    as_user(client, django_user_model, "manage")
    before = snapshot()
    for name, (target, data) in write_pages().items():
        assert client.post(target, post_data(name, data, tree)).status_code == 403, name
    assert snapshot() == before


# --- upload, new folder ----------------------------------------------------------------------


def test_upload_several_files_into_a_new_folder(writer, tree):
    data = {"files": [upload("one.txt", b"1\n"), upload("two.txt", b"2\n")], "comment": "first drafts"}
    response = writer.post(url("upload", "team/new"), data, follow=True)
    assert response.redirect_chain[-1][0] == url("browse", "team/new/")
    assert messages_of(response) == ["Uploaded 2 files."]
    assert [row["name"] for row in response.context["rows"]] == ["one.txt", "two.txt"]
    version = api.lookup("team/new/two.txt")
    assert version.open().read() == b"2\n" and version.comment == "first drafts"
    assert version.muser == "user-write"
    assert_statistics_exact()


def test_uploading_onto_an_item_writes_a_new_version(writer, tree):
    writer.post(url("upload", "team"), {"files": [upload("a.txt", b"three\n")]})
    assert api.lookup("team/a.txt").open().read() == b"three\n"
    assert api.versions("team/a.txt").count() == 3


def test_the_add_page_ignores_a_posted_folder(writer, tree):
    writer.post(url("upload", "team"), {"files": [upload("x.txt")], "folder": "secret"})
    assert api.lookup("team/x.txt") is not None and api.lookup("secret/x.txt") is None


@pytest.mark.parametrize(
    "target, data, message",
    [
        (url("upload", "team"), {}, "This field is required"),
        (url("upload", "team"), {"files": [upload("a.txt"), upload("a.txt")]}, "Two files are named a.txt"),
        (url("upload", "team/" + "n" * 1018), {"files": [upload("name.txt")]}, "the limit is 1024 bytes"),
        (url("upload", "team"), {"files": [upload()], "comment": "x\x00y"}, "comment"),
        (url("upload", "team/a.txt"), {"files": [upload()]}, "is an item, not a folder"),
        (url("upload", "team"), {"files": [upload("sub")]}, "is a folder; a file cannot take its name"),
        (url("new_folder", "team"), {"path": ""}, "This field is required"),
        (url("new_folder", "team"), {"path": "team/x/"}, "team/x/"),
        (url("new_folder", "team"), {"path": "team/sub"}, "that path is taken"),
    ],
)
def test_upload_and_folder_rejections_write_nothing(writer, tree, target, data, message):
    rejected(writer, target, data, message)


@override_settings(VERSIONED_ITEMS={"DEFAULT_ACCESS": "", "UPLOAD_MAX_BYTES": 4})
def test_upload_size_limit(writer, tree):
    rejected(writer, url("upload", "team"), {"files": [upload("big.txt", b"12345")]}, "the limit is 4 bytes")
    rejected(writer, url("new_version", "team/a.txt"), {"file": upload("a.txt", b"12345")}, "the limit is 4")


def test_new_folder(writer, tree):
    response = writer.post(url("new_folder", "team"), {"path": "team/reports"})
    assert response.status_code == 302 and response["Location"] == url("browse", "team/reports/")
    assert Node.objects.get(path="team/reports").current_id is None


def test_a_bad_folder_in_the_url_is_a_400(writer, tree):
    assert writer.get(url("upload", "team/\x01")).status_code == 400


# --- new version, edit -----------------------------------------------------------------------


def test_new_version_with_a_comment(writer, tree):
    response = writer.post(url("new_version", "team/a.txt"), {"file": upload("x", b"3\n"), "comment": "v3"})
    assert response.status_code == 302
    version = api.lookup("team/a.txt")
    assert version.open().read() == b"3\n" and version.comment == "v3"
    rejected(writer, url("new_version", "team/a.txt"), {"comment": "no file"}, "This field is required")


def test_edit_keeps_the_type_and_line_ends_and_shows_the_comment_in_the_history(writer, tree):
    page = writer.get(url("edit", "team/a.txt"))
    assert page.context["form"].initial == {"text": "two\n", "base": tree["new"]}
    data = {"text": "two\r\nthree\r\n", "base": tree["new"], "comment": "added three"}
    assert writer.post(url("edit", "team/a.txt"), data).status_code == 302
    version = api.lookup("team/a.txt")
    assert version.open().read() == b"two\nthree\n" and version.content_type == "text/x-notes"
    history = writer.get(url("item", "team/a.txt")).content.decode()
    assert '<td class="vi-comment">added three</td>' in history


@pytest.mark.parametrize(
    "data, message",
    [
        ({"text": "two\n", "base": "NEW"}, "The text is unchanged"),
        ({"text": "other\n", "base": "OLD"}, "was written since you opened this page"),
        ({"text": "other\n"}, "This field is required"),
        ({"text": "other\n", "base": "NEW", "comment": "x" * 5000}, "at most"),
    ],
)
def test_edit_rejections_write_nothing(writer, tree, data, message):
    data = {**data}
    if "base" in data:
        data["base"] = tree["new"] if data["base"] == "NEW" else tree["old"]
    rejected(writer, url("edit", "team/a.txt"), data, message)


def test_binary_and_deleted_items_are_not_edited(writer, tree):
    assert "not text" in writer.get(url("edit", "team/logo.png")).content.decode()
    assert writer.get(url("edit", "team/logo.png")).status_code == 400
    assert writer.get(url("edit", "team/gone.txt")).status_code == 400
    assert writer.get(url("new_version", "team/gone.txt")).status_code == 400
    assert 'href="/edit/' not in writer.get(url("item", "team/logo.png")).content.decode()


# --- delete, move, copy ----------------------------------------------------------------------


def test_delete_asks_then_sends_to_the_recycle_bin(writer, tree):
    before = snapshot()
    ask = writer.get(url("delete", "team/a.txt"))
    assert ask.status_code == 200 and "Yes, delete" in ask.content.decode() and snapshot() == before
    response = writer.post(url("delete", "team/a.txt"), {"comment": "obsolete"}, follow=True)
    assert response.redirect_chain[-1][0] == url("browse", "team/")
    assert "a.txt" not in [row["name"] for row in response.context["rows"]]
    bin_page = writer.get(url("bin", "team"))
    rows = {name: entry.version for name, entry in bin_page.context["rows"]}
    assert rows["a.txt"].comment == "obsolete" and rows["a.txt"].muser == "user-write"
    assert "obsolete" in bin_page.content.decode()
    assert_statistics_exact()


def test_delete_a_folder_deletes_the_items_below(writer, tree):
    writer.post(url("delete", "team/sub"), {})
    assert api.lookup("team/sub/b.txt") is None
    assert [name for name, _ in writer.get(url("bin", "team")).context["rows"]] == ["gone.txt", "sub/b.txt"]


def test_delete_rejections_write_nothing(writer, tree, monkeypatch):
    rejected(writer, url("delete", "team/a.txt"), {"comment": "x" * 5000}, "at most")
    before = snapshot()
    assert writer.post(url("delete", "team/gone.txt"), {}).status_code == 400  # nothing live there
    monkeypatch.setattr(writes, "MAX_ITEMS", 1)
    assert "more than 1 items" in writer.post(url("delete", "team"), {}).content.decode()
    assert snapshot() == before


def test_move_asks_then_moves_the_subtree(writer, tree):
    before = snapshot()
    ask = writer.post(url("move", "team/sub"), {"destination": "team/renamed"})
    assert ask.status_code == 200 and ask.context["confirm"] and ask.context["below"] == 1
    assert snapshot() == before
    response = writer.post(url("move", "team/sub"), {"destination": "team/renamed", "confirm": "1"})
    assert response["Location"] == url("browse", "team/renamed/")
    assert api.lookup("team/renamed/b.txt") is not None and api.lookup("team/sub/b.txt") is None
    assert_statistics_exact()


@pytest.mark.parametrize(
    "destination, message",
    [
        ("team/logo.png", "that path is taken"),
        ("team/a.txt/inside", "cannot move"),
        ("", "This field is required"),
        ("team/bad\x01", "control character"),
    ],
)
def test_move_rejections_write_nothing(writer, tree, destination, message):
    rejected(writer, url("move", "team/a.txt"), {"destination": destination, "confirm": "1"}, message)


def test_copy_an_item(writer, tree):
    response = writer.post(url("copy", "team/a.txt"), {"destination": "team/copy.txt", "comment": "backup"})
    assert response["Location"] == url("item", "team/copy.txt")
    copied = api.lookup("team/copy.txt")
    assert (
        copied.source == tree["new"] and copied.comment == "backup" and copied.content_type == "text/x-notes"
    )
    assert api.lookup("team/a.txt").serial == tree["new"]


def test_copy_a_folder_copies_the_items_below(writer, tree):
    ask = writer.get(url("copy", "team/sub"))
    assert [item.path for item in ask.context["items"]] == ["team/sub/b.txt"]
    response = writer.post(url("copy", "team/sub"), {"destination": "team/sub2", "comment": "twin"})
    assert response["Location"] == url("browse", "team/sub2/")
    assert api.lookup("team/sub2/b.txt").comment == "twin"
    assert api.lookup("team/sub/b.txt") is not None
    assert_statistics_exact()
    rejected(writer, url("copy", "team/sub"), {"destination": "team/a.txt"}, "Nothing was changed")


@pytest.mark.parametrize(
    "destination, message",
    [("team/sub", "is a folder"), ("", "This field is required"), ("team/../x", "segment")],
)
def test_copy_rejections_write_nothing(writer, tree, destination, message):
    rejected(writer, url("copy", "team/a.txt"), {"destination": destination}, message)


# --- the recycle bin -------------------------------------------------------------------------


def test_undelete_from_the_recycle_bin(writer, tree):
    response = writer.post(url("undelete", "team/gone.txt"), {}, follow=True)
    assert response.redirect_chain[-1][0] == url("item", "team/gone.txt")
    assert "is back" in messages_of(response)[0]
    assert api.lookup("team/gone.txt").open().read() == b"bye\n"
    assert writer.get(url("bin", "team")).context["rows"] == []
    assert writer.get(url("undelete", "team/gone.txt")).status_code == 405
    rejected(writer, url("undelete", "team/a.txt"), {}, "is not deleted")


def test_a_manager_purges_a_deleted_item_for_good(manager, tree):
    before = snapshot()
    ask = manager.get(url("purge", "team/gone.txt"))
    assert ask.status_code == 200 and ask.context["versions"] == 2 and snapshot() == before
    assert "Purge" in manager.get(url("bin", "team")).content.decode()
    response = manager.post(url("purge", "team/gone.txt"), {})
    assert response["Location"] == url("bin", "team")
    assert not Node.objects.filter(path="team/gone.txt").exists()
    assert not Version.objects.filter(node__path="team/gone.txt").exists()
    assert_statistics_exact()
    rejected(manager, url("purge", "team/a.txt"), {}, "Only deleted items can be purged")


def test_the_recycle_bin_pages_with_a_marker(writer, tree, monkeypatch):
    monkeypatch.setattr(writes, "BIN_PAGE_SIZE", 2)
    with api.batch():
        for i in range(3):
            api.put(f"team/d{i}.txt", "x")
            api.delete(f"team/d{i}.txt")
    first = writer.get(url("bin", "team"))
    assert [name for name, _ in first.context["rows"]] == ["d0.txt", "d1.txt"]
    second = writer.get(url("bin", "team") + first.context["next_url"])
    assert [name for name, _ in second.context["rows"]] == ["d2.txt", "gone.txt"]
    assert writer.get(url("bin", "team") + "?marker=%01").status_code == 400


def test_list_deleted_keeps_what_the_user_may_read(django_user_model, tree):
    api.delete("secret/s.txt")
    user = django_user_model.objects.create_user("u")
    api.grant("team", user=user, level="read")
    assert [e.path for e in api.list_deleted(user=user).objects] == ["team/gone.txt"]
    assert [e.path for e in api.list_deleted().objects] == ["secret/s.txt", "team/gone.txt"]
    assert api.list_deleted("team").objects[0].version.comment == "not needed"


# --- show versions ---------------------------------------------------------------------------


def test_show_versions_lists_each_items_newest_versions(writer, tree, monkeypatch):
    monkeypatch.setattr(views, "VERSIONS_PER_ITEM", 1)
    plain = writer.get(url("browse", "team/"))
    assert all("versions" not in row for row in plain.context["rows"])
    response = writer.get(url("browse", "team/"), {"versions": "on"})
    rows = {row["name"]: row for row in response.context["rows"]}
    assert [v.serial for v in rows["a.txt"]["versions"]] == [tree["new"]] and rows["a.txt"]["more_versions"]
    assert not rows["logo.png"]["more_versions"]
    assert "Hide versions" in response.content.decode()


# --- query counts ----------------------------------------------------------------------------


def grow(start, end):
    """Items ``start`` to ``end`` in team/many/: each with two versions, and as many deleted."""
    with api.batch():
        for i in range(start, end):
            api.put(f"team/many/f{i:03}.txt", "1")
            api.put(f"team/many/f{i:03}.txt", "2")
            api.put(f"team/many/g{i:03}.txt", "1")
            api.delete(f"team/many/g{i:03}.txt")


PAGES = {
    # session, user, model permissions (2), grants (1 or 2), then the page's own queries
    "browse": (url("browse", "team/many/") + "?versions=on", 10),
    "bin": (url("bin", "team/many"), 9),
    "item": (url("item", "team/many/f000.txt"), 10),
    "edit": (url("edit", "team/many/f000.txt"), 6),
    "delete": (url("delete", "team/many"), 7),
    "move": (url("move", "team/many"), 6),
    "copy": (url("copy", "team/many/f000.txt"), 6),
    "upload": (url("upload", "team/many"), 5),
    "purge": (url("purge", "team/many/g000.txt"), 7),
}


@pytest.mark.parametrize("name", PAGES)
def test_page_queries_do_not_grow_with_the_data(manager, tree, name, django_assert_max_num_queries):
    target, most = PAGES[name]
    counts = []
    for start, end in ((0, 5), (5, 50)):
        grow(start, end)
        with django_assert_max_num_queries(most), CaptureQueriesContext(connection) as captured:
            assert manager.get(target).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]
