"""versioned_items.admin writes: Add (upload, new folder), new version, text edit, delete, move,
copy, versioning, their LogEntry audit trail, rejections (nothing written), permissions, CSRF."""

from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from versioned_items import api
from versioned_items.models import Node, Versioning

from ..helpers import assert_statistics_exact, snapshot
from .test_admin import permission

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree():
    with api.batch():
        api.put("docs/a.txt", "one\ntwo\n", user="ann")
        api.put("docs/notes.md", "# Notes\n", user="ann")
        api.put("docs/img.png", b"\x89PNG\x00\x01", user="ann")
        api.create_node("empty")
    return {
        path: Node.objects.get(path=path)
        for path in ["", "docs", "docs/a.txt", "docs/notes.md", "docs/img.png"]
    }


def url(name, node=None):
    return reverse(f"admin:versioned_items_node_{name}", args=[node.pk] if node else [])


def entries():
    """The LogEntry rows as (flag, object repr, message), oldest first."""
    return [(e.action_flag, e.object_repr, e.change_message) for e in LogEntry.objects.order_by("pk")]


def rejected(client, target, data, message, status=400):
    """POST ``data`` to ``target``: the page shows ``message`` and nothing is written or logged."""
    before, logged = snapshot(), LogEntry.objects.count()
    response = client.post(target, data)
    assert response.status_code == status, response.content.decode()[:2000]
    assert message in response.content.decode()
    assert snapshot() == before and LogEntry.objects.count() == logged


# --- Add: upload files, new folder -----------------------------------------------------------


def test_add_page_starts_in_the_lists_folder(admin_client, tree):
    listed = admin_client.get(reverse("admin:versioned_items_node_changelist"), {"under": "docs"})
    assert f"{url('add')}?folder=docs" in listed.content.decode()
    page = admin_client.get(url("add"), {"_changelist_filters": "under=docs"})
    assert page.context["panels"][0]["form"].initial["folder"] == "docs"
    assert (
        admin_client.get(url("add"), {"folder": "x\x07"}).context["panels"][0]["form"].initial["folder"] == ""
    )


def test_upload_files_into_a_new_folder(admin_client, tree):
    files = [SimpleUploadedFile("r1.txt", b"first\n"), SimpleUploadedFile("r2.csv", b"a,b\n")]
    response = admin_client.post(
        url("add"),
        {"upload-folder": "reports/2025", "upload-files": files, "upload-comment": "Q1", "_upload": "1"},
    )
    assert response.status_code == 302
    assert response["Location"] == url("change", Node.objects.get(path="reports/2025"))
    first, second = api.lookup("reports/2025/r1.txt"), api.lookup("reports/2025/r2.csv")
    assert api.open_content(first).read() == b"first\n" and second.content_type == "text/csv"
    assert (first.comment, first.muser) == ("Q1", "admin")
    assert entries() == [
        (
            ADDITION,
            "reports/2025/r1.txt",
            f"Uploaded reports/2025/r1.txt as version #{first.serial} (6 bytes). Comment: Q1",
        ),
        (
            ADDITION,
            "reports/2025/r2.csv",
            f"Uploaded reports/2025/r2.csv as version #{second.serial} (4 bytes). Comment: Q1",
        ),
    ]
    again = admin_client.post(
        url("add"),
        {"upload-folder": "docs", "upload-files": [SimpleUploadedFile("a.txt", b"2")], "_upload": "1"},
    )
    assert again.status_code == 302 and entries()[-1][0] == CHANGE  # a new version of an item
    assert_statistics_exact()


@pytest.mark.parametrize(
    "folder, names, message",
    [
        ("docs", [], "This field is required."),
        ("bad\x07", ["x.txt"], "U+0007"),
        ("docs/a.txt", ["x.txt"], "is an item, not a folder"),
        ("", ["empty"], "is a folder; a file cannot take its name"),
        ("docs", ["x.txt", "x.txt"], "Two files are named x.txt"),
    ],
)
def test_bad_uploads_write_nothing(admin_client, tree, folder, names, message):
    files = [SimpleUploadedFile(name, b"data") for name in names]
    data = {"upload-folder": folder, "upload-files": files, "_upload": "1"}
    rejected(admin_client, url("add"), data, message.replace("'", "&#x27;"))


def test_upload_size_limit(admin_client, tree):
    with override_settings(VERSIONED_ITEMS={"UPLOAD_MAX_BYTES": 10}):
        data = {
            "upload-folder": "docs",
            "upload-files": [SimpleUploadedFile("big.bin", b"x" * 11)],
            "_upload": "1",
        }
        rejected(admin_client, url("add"), data, "big.bin has 11 bytes; the limit is 10 bytes")


@override_settings(FILE_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_a_large_upload_streams_from_a_temporary_file(admin_client, tree, monkeypatch):
    seen, put = [], api.put
    monkeypatch.setattr(
        api, "put", lambda path, content, **kw: seen.append(type(content)) or put(path, content, **kw)
    )
    content = bytes(range(256)) * 200  # 51,200 bytes, beyond the 1,024 kept in memory
    data = {"upload-folder": "docs", "upload-files": [SimpleUploadedFile("big.bin", content)], "_upload": "1"}
    assert admin_client.post(url("add"), data).status_code == 302
    assert seen == [TemporaryUploadedFile]  # the file object itself, never read whole here
    assert api.open_content(api.lookup("docs/big.bin")).read() == content


def test_new_folder_and_a_duplicate(admin_client, tree):
    response = admin_client.post(url("add"), {"folder-path": "archive/old", "_folder": "1"})
    assert response.status_code == 302 and Node.objects.filter(path="archive/old", current=None).exists()
    assert entries() == [(ADDITION, "archive/old", "Created the folder archive/old.")]
    rejected(
        admin_client,
        url("add"),
        {"folder-path": "docs", "_folder": "1"},
        "a node already exists at &#x27;docs&#x27;",
    )
    rejected(admin_client, url("add"), {"folder-path": "a//b", "_folder": "1"}, "segment")


# --- a node's page ---------------------------------------------------------------------------


def test_node_page_offers_the_writes_and_history(admin_client, tree):
    html = admin_client.get(url("change", tree["docs/a.txt"])).content.decode()
    for name in ("upload", "edit", "move", "copy", "delete", "versioning", "history"):
        assert url(name, tree["docs/a.txt"]) in html, name
    assert (
        url("edit", tree["docs/img.png"])
        not in admin_client.get(url("change", tree["docs/img.png"])).content.decode()
    )


def test_upload_a_new_version_with_a_comment_shown_in_the_history(admin_client, tree):
    node = tree["docs/a.txt"]
    data = {"file": SimpleUploadedFile("anything.bin", b"three\n"), "comment": "Rewritten\nfrom scratch"}
    assert admin_client.post(url("upload", node), data).status_code == 302
    version = api.lookup("docs/a.txt")
    assert api.open_content(version).read() == b"three\n" and version.comment == "Rewritten\nfrom scratch"
    assert "Rewritten<br>from scratch" in admin_client.get(url("change", node)).content.decode()
    assert entries()[-1][:2] == (CHANGE, "docs/a.txt")
    assert admin_client.get(url("upload", tree["docs"])).status_code == 400  # a folder has no versions
    rejected(
        admin_client,
        url("upload", node),
        {"file": SimpleUploadedFile("x", b"1"), "comment": "a\x1bb"},
        "U+001B (ESC)",
    )


def test_edit_text_keeps_the_content_type_and_line_ends(admin_client, tree):
    node = tree["docs/notes.md"]
    page = admin_client.get(url("edit", node))
    assert page.status_code == 200 and "# Notes" in page.content.decode()
    base = node.current_id
    data = {"text": "# Notes\r\n\r\nMore.\r\n", "comment": "More", "base": base}
    assert admin_client.post(url("edit", node), data).status_code == 302
    version = api.lookup("docs/notes.md")
    assert api.open_content(version).read() == b"# Notes\n\nMore.\n"
    assert (version.content_type, version.comment) == ("text/markdown", "More")
    assert entries()[-1] == (
        CHANGE,
        "docs/notes.md",
        f"Edited docs/notes.md: version #{version.serial} (from #{base}). Comment: More",
    )
    # Edited from a version that is no longer current, unchanged text, a bad comment.
    rejected(admin_client, url("edit", node), {**data, "text": "x"}, "was written since you opened this page")
    same = {"text": "# Notes\n\nMore.\n", "base": version.serial}
    rejected(admin_client, url("edit", node), same, "The text is unchanged")
    rejected(admin_client, url("edit", node), {**same, "text": "y", "comment": "\x07"}, "U+0007")


def test_binary_and_large_items_are_not_edited(admin_client, tree):
    assert "is not text" in admin_client.get(url("edit", tree["docs/img.png"])).content.decode()
    with override_settings(VERSIONED_ITEMS={"EDIT_MAX_BYTES": 4}):
        assert "is larger than 4 bytes" in admin_client.get(url("edit", tree["docs/a.txt"])).content.decode()


def test_set_the_versioning_policy(admin_client, tree):
    docs = tree["docs"]
    assert admin_client.post(url("versioning", docs), {"versioning": Versioning.NONE}).status_code == 302
    assert Node.objects.get(pk=docs.pk).versioning == Versioning.NONE
    assert (
        entries()[-1][2]
        == "Set the versioning of docs to 'keep only the current version' (was 'inherit from parent')."
    )
    assert "keeps no history" in admin_client.get(url("upload", tree["docs/a.txt"])).content.decode()
    rejected(admin_client, url("versioning", docs), {"versioning": "sometimes"}, "Select a valid choice")


# --- delete, move, copy ----------------------------------------------------------------------


def test_delete_asks_then_writes_a_marker_that_undelete_takes_back(admin_client, tree):
    node = tree["docs/a.txt"]
    before = snapshot()
    ask = admin_client.get(url("delete", node))
    assert ask.status_code == 200 and "Yes, delete" in ask.content.decode() and snapshot() == before
    rejected(
        admin_client, url("delete", node), {"post": "yes", "comment": "x" * 2001}, "at most 2000 characters"
    )
    assert admin_client.post(url("delete", node), {"post": "yes", "comment": "Obsolete"}).status_code == 302
    marker = Node.objects.get(pk=node.pk).current
    assert marker.is_delete_marker and marker.comment == "Obsolete"
    assert entries()[-1] == (
        DELETION,
        "docs/a.txt",
        f"Deleted docs/a.txt: delete marker #{marker.serial}. Comment: Obsolete",
    )
    admin_client.post(url("undelete", node), {"post": "yes"})
    assert api.lookup("docs/a.txt") is not None and entries()[-1][0] == CHANGE
    assert "Undeleted docs/a.txt" in entries()[-1][2]


def test_delete_action_on_a_folder_deletes_the_items_below(admin_client, tree):
    changelist = reverse("admin:versioned_items_node_changelist")
    data = {"action": "delete_items", "_selected_action": [tree["docs"].pk, tree["docs/a.txt"].pk]}
    confirm = admin_client.post(changelist, {**data, "index": "0"})
    assert [label for label, _ in confirm.context["items"]] == ["docs/a.txt", "docs/img.png", "docs/notes.md"]
    admin_client.post(changelist, {**data, "post": "yes"})
    assert api.list_latest("docs").objects == []
    assert [e[0] for e in entries()] == [DELETION] * 3
    assert_statistics_exact()


def test_move_asks_confirms_and_moves_the_subtree(admin_client, tree):
    docs = tree["docs"]
    assert admin_client.get(url("move", docs)).context["form"].initial == {"destination": "docs"}
    confirm = admin_client.post(url("move", docs), {"destination": "manual", "comment": "Renamed"})
    assert confirm.context["items"] == [("docs", "becomes manual")] and snapshot()  # asked, not moved
    assert api.lookup_node("docs") is not None
    done = admin_client.post(
        url("move", docs), {"destination": "manual", "comment": "Renamed", "post": "yes"}
    )
    assert (
        done.status_code == 302 and api.lookup("manual/a.txt") is not None and api.lookup_node("docs") is None
    )
    assert entries() == [
        (CHANGE, "manual", "Moved docs to manual, with everything below it. Comment: Renamed")
    ]
    rejected(admin_client, url("move", docs), {"destination": "manual/sub", "post": "yes"}, "into itself")
    rejected(admin_client, url("move", docs), {"destination": "empty", "post": "yes"}, "already exists")
    assert_statistics_exact()


def test_move_and_copy_actions_into_a_folder(admin_client, tree):
    changelist = reverse("admin:versioned_items_node_changelist")
    selected = {"_selected_action": [tree["docs/a.txt"].pk, tree["docs/img.png"].pk]}
    admin_client.post(changelist, {"action": "copy_items", **selected, "folder": "backup", "post": "yes"})
    assert api.open_content(api.lookup("backup/a.txt")).read() == b"one\ntwo\n"
    assert api.lookup("backup/a.txt").source == tree["docs/a.txt"].current_id
    assert [e[:2] for e in entries()] == [(ADDITION, "backup/a.txt"), (ADDITION, "backup/img.png")]
    admin_client.post(changelist, {"action": "move_items", **selected, "folder": "moved", "post": "yes"})
    assert api.lookup("moved/img.png") is not None and api.lookup("docs/img.png") is None
    assert_statistics_exact()


def test_copy_a_folder_to_a_path(admin_client, tree):
    confirm = admin_client.post(url("copy", tree["docs"]), {"destination": "docs2"})
    assert ("docs/a.txt", "to docs2/a.txt") in confirm.context["items"]
    admin_client.post(url("copy", tree["docs"]), {"destination": "docs2", "post": "yes", "comment": "Fork"})
    assert sorted(e.path for e in api.list_latest("docs2").objects) == [
        "docs2/a.txt",
        "docs2/img.png",
        "docs2/notes.md",
    ]
    assert api.lookup("docs2/a.txt").comment == "Fork"
    rejected(admin_client, url("copy", tree["docs/a.txt"]), {"destination": "a\x07", "post": "yes"}, "U+0007")


# --- audit trail -----------------------------------------------------------------------------


def test_the_audit_trail_shows_in_recent_actions_and_the_nodes_history(admin_client, tree):
    node = tree["docs/a.txt"]
    old = [api.put("docs/old.txt", str(i), mtime=datetime(2024, i, 1, tzinfo=UTC)) for i in (1, 2)]
    admin_client.post(url("delete", node), {"post": "yes"})
    first = api.versions("docs/a.txt").last()
    admin_client.post(reverse("admin:versioned_items_version_restore", args=[first.serial]), {"post": "yes"})
    restored = api.lookup("docs/a.txt")
    admin_client.post(url("purge", tree["docs"]), {"before": "2024-03-01", "clusters": ["1"], "post": "yes"})
    messages = [e[2] for e in entries()]
    assert messages[1] == f"Restored docs/a.txt #{first.serial} as version #{restored.serial}."
    assert messages[2] == f"Purged 1 version below docs written before 2024-03-01 00:00:00: #{old[0].serial}."
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "docs/a.txt" in index and url("change", node) in index
    history = admin_client.get(url("history", node)).content.decode()
    assert "Restored docs/a.txt" in history and "Deleted docs/a.txt" in history


# --- permissions and CSRF --------------------------------------------------------------------


def write_requests(tree):
    """(url, POST data) of every write page, each of which would write with the permission."""
    a, docs = tree["docs/a.txt"], tree["docs"]
    return [
        ("add", url("add"), {"folder-path": "new", "_folder": "1"}),
        ("add", url("copy", a), {"destination": "c.txt", "post": "yes"}),
        ("change", url("upload", a), {"file": SimpleUploadedFile("x", b"1")}),
        ("change", url("edit", a), {"text": "new", "base": a.current_id}),
        ("change", url("move", a), {"destination": "m.txt", "post": "yes"}),
        ("change", url("versioning", docs), {"versioning": "none"}),
        ("delete", url("delete", a), {"post": "yes"}),
    ]


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(permission("view_node", Node), permission("view_version"))
    client.force_login(user)
    client.user = user
    return client


@pytest.mark.parametrize("number", range(7))
def test_each_write_needs_its_permission(staff, tree, number):
    kind, target, data = write_requests(tree)[number]
    before = snapshot()
    assert staff.get(target).status_code == 403
    assert staff.post(target, data).status_code == 403
    assert snapshot() == before and LogEntry.objects.count() == 0
    staff.user.user_permissions.add(permission(f"{kind}_node", Node))
    staff.user = type(staff.user).objects.get(pk=staff.user.pk)  # a fresh permission cache
    staff.force_login(staff.user)
    _, target, data = write_requests(tree)[number]  # fresh upload files
    assert staff.post(target, data).status_code == 403  # and the write level (issue 12)
    assert snapshot() == before and LogEntry.objects.count() == 0
    api.grant("", user=staff.user, level="write")
    _, target, data = write_requests(tree)[number]
    assert staff.post(target, data).status_code == 302
    assert snapshot() != before and LogEntry.objects.count() >= 1


def test_without_permissions_the_pages_offer_no_writes(staff, tree):
    html = staff.get(url("change", tree["docs/a.txt"])).content.decode()
    assert url("upload", tree["docs/a.txt"]) not in html and url("delete", tree["docs/a.txt"]) not in html
    assert url("add") not in staff.get(reverse("admin:versioned_items_node_changelist")).content.decode()


def test_writes_are_csrf_protected_posts(django_user_model, tree):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    before = snapshot()
    for _, target, data in write_requests(tree):
        assert client.post(target, data).status_code == 403, target
        assert client.get(target, {k: v for k, v in data.items() if isinstance(v, str)}).status_code in (
            200,
            400,
        ), target
    assert snapshot() == before and LogEntry.objects.count() == 0
