"""versioned_items.admin and grants (issue 12): the lists and pages of a staff user without
grants, a reader, a writer and a manager of one folder, and a superuser; the grants section of
a node's page and its forms, their rejections (nothing written) and their audit trail."""

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from versioned_items import api, checks, grants, permissions
from versioned_items.models import Grant, Node

from ..helpers import snapshot
from .test_admin import attribute_form

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_default_access")]

JAN, JUN = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)
#: Readable by the folder's users: alpha and below. Hidden from them: the rest.
ALPHA = ["alpha/a.txt", "alpha/b.txt", "alpha/sub/c.txt"]
HIDDEN = ["alpha-x/h.txt", "beta/secret.txt", "top.txt"]


@pytest.fixture
def no_default_access(settings):
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "DEFAULT_ACCESS": ""}


@pytest.fixture
def tree():
    with api.batch():
        for path in ALPHA + HIDDEN:
            api.put(path, f"{path} one\n", user="ann", mtime=JAN)
            api.put(path, f"{path} two\n", user="bob", mtime=JUN)
    return {node.path: node for node in Node.objects.all()}


def node_permissions(*actions):
    return Permission.objects.filter(content_type__app_label="versioned_items", codename__in=actions)


def staff_client(django_user_model, name, *actions, level=None, on="alpha"):
    """A logged-in staff user with the node admin's model permissions ``actions`` (``view_node``
    always) and, if ``level``, a grant of it on ``on``."""
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(node_permissions("view_node", *actions))
    if level:
        api.grant(on, user=user, level=level)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


WRITES = ("add_node", "change_node", "delete_node")


@pytest.fixture
def nobody(django_user_model, tree):
    return staff_client(django_user_model, "nobody", *WRITES)


@pytest.fixture
def reader(django_user_model, tree):
    return staff_client(django_user_model, "reader", level="read")


@pytest.fixture
def writer(django_user_model, tree):
    return staff_client(django_user_model, "writer", *WRITES, level="write")


@pytest.fixture
def manager(django_user_model, tree):
    return staff_client(django_user_model, "manager", *WRITES, level="manage")


@pytest.fixture
def users(nobody, reader, writer, manager, admin_client):
    return {
        "nobody": nobody,
        "reader": reader,
        "writer": writer,
        "manager": manager,
        "superuser": admin_client,
    }


def changelist(model="node"):
    return reverse(f"admin:versioned_items_{model}_changelist")


def node_url(tree, path, name="change"):
    return reverse(f"admin:versioned_items_node_{name}", args=[tree[path].pk])


def version_url(serial, name="change"):
    return reverse(f"admin:versioned_items_version_{name}", args=[serial])


def listed(client, model="node", **params):
    response = client.get(changelist(model), params)
    assert response.status_code == 200
    rows = response.context["cl"].result_list
    return [row.path for row in rows] if model == "node" else [row.node.path for row in rows]


def unchanged(client, method, url, data=None, status=403):
    """The request is refused with ``status`` and writes and logs nothing."""
    before, logged, granted = snapshot(), LogEntry.objects.count(), list(Grant.objects.values_list())
    response = getattr(client, method)(url, data or {})
    assert response.status_code == status, (url, response.status_code)
    assert snapshot() == before and LogEntry.objects.count() == logged
    assert list(Grant.objects.values_list()) == granted
    return response


# --- lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, nodes",
    [
        ("nobody", []),
        ("reader", ["alpha", "alpha/a.txt", "alpha/b.txt", "alpha/sub", "alpha/sub/c.txt"]),
        ("writer", ["alpha", "alpha/a.txt", "alpha/b.txt", "alpha/sub", "alpha/sub/c.txt"]),
        ("manager", ["alpha", "alpha/a.txt", "alpha/b.txt", "alpha/sub", "alpha/sub/c.txt"]),
        ("superuser", None),
    ],
)
def test_the_lists_show_only_readable_rows(users, who, nodes):
    client = users[who]
    everything = sorted(Node.objects.values_list("path", flat=True))
    assert sorted(listed(client)) == (everything if nodes is None else nodes)
    versions = listed(client, "version")
    expected = ALPHA if who != "superuser" else ALPHA + HIDDEN
    assert sorted(set(versions)) == sorted(p for p in expected if who != "nobody")
    assert len(versions) == (0 if who == "nobody" else 2 * len(expected))


def test_a_page_of_the_list_is_full_when_enough_rows_are_readable(django_user_model, monkeypatch):
    # Readable and hidden folders alternate: filtering after paging would show half a page.
    with api.batch():
        for i in range(12):
            api.put(f"t/{i:02}/x.txt", "x")
    user = staff_client(django_user_model, "even")
    for i in range(0, 12, 2):
        api.grant(f"t/{i:02}", user=user.user)
    monkeypatch.setattr(django_admin.site._registry[Node], "list_per_page", 4)
    first = user.get(changelist())
    cl = first.context["cl"]
    assert [n.path for n in cl.result_list] == ["t/00", "t/00/x.txt", "t/02", "t/02/x.txt"]
    assert cl.counted == 12 and cl.next_url  # the bounded count is exact too
    pages = [[n.path for n in cl.result_list]]
    while cl.next_url:
        cl = user.get(changelist() + cl.next_url).context["cl"]
        pages.append([n.path for n in cl.result_list])
    assert [len(p) for p in pages] == [4, 4, 4]
    assert all(int(p.split("/")[1]) % 2 == 0 for page in pages for p in page)
    versions = user.get(changelist("version")).context["cl"]
    assert sorted(v.node.path for v in versions.result_list) == [f"t/{i:02}/x.txt" for i in range(0, 12, 2)]


@pytest.mark.parametrize("count", [1, 200])
def test_the_node_list_costs_the_same_queries_for_1_or_200_grants(
    django_user_model, django_assert_num_queries, count
):
    with api.batch():
        for i in range(count):
            api.put(f"team/{i:03}/doc.txt", b"d")
            api.put(f"team/{i:03}-hidden/doc.txt", b"h")
    client = staff_client(django_user_model, f"holder{count}")
    group = Group.objects.create(name="holders")
    client.user.groups.add(group)
    for i in range(count):
        api.grant(f"team/{i:03}", **({"user": client.user} if i % 2 else {"group": group}))
    assert (count > grants.MAX_RANGE_TERMS) == (count == 200)  # both forms of the condition
    # session, user, the user's and their groups' model permissions, the grants' paths, whether
    # the user manages some path (to offer restore and purge), the bounded count, the page
    with django_assert_num_queries(8):
        response = client.get(changelist())
    expected = ["team/000", "team/000/doc.txt", "team/001", "team/001/doc.txt"][: 2 * count]
    assert [n.path for n in response.context["cl"].result_list][:4] == expected
    assert response.context["cl"].counted == min(2 * count, 1000)


@pytest.mark.parametrize("count", [1, 200])
def test_a_node_page_costs_the_same_queries_for_1_or_200_grants(
    django_user_model, django_assert_num_queries, count
):
    with api.batch():
        for i in range(count):
            api.put(f"team/{i:03}/doc.txt", b"d")
    client = staff_client(django_user_model, f"manager{count}", *WRITES, level="manage", on="team/000")
    for i in range(1, count):
        api.grant(f"team/{i:03}", user=client.user, level="read")
    page = reverse("admin:versioned_items_node_change", args=[Node.objects.get(path="team/000/doc.txt").pk])
    # session, user, the model permissions (2), the grants' paths, the node, children, versions
    # and their attributes, ancestors, statistics, the grants that apply, the user's level for
    # writing and for managing (each asked once per page)
    with django_assert_num_queries(14):
        response = client.get(page)
    assert response.context["can_change"] and response.context["can_restore"]
    assert response.context["grant_form"] is not None


# --- pages that are not readable, or not allowed ---------------------------------------------


def read_pages(tree, path):
    """Every admin page that shows something of ``path`` (its node, newest version, history)."""
    serial = tree[path].current_id
    return [
        node_url(tree, path),
        node_url(tree, path, "history"),
        node_url(tree, path, "grants"),
        version_url(serial),
        version_url(serial, "content"),
        version_url(serial, "history"),
        reverse("admin:versioned_items_version_diff") + f"?old={serial - 1}&new={serial}",
    ]


@pytest.mark.parametrize("who", ["nobody", "reader", "writer", "manager"])
def test_a_path_the_user_may_not_read_is_a_404_everywhere(users, tree, who):
    for url in read_pages(tree, "beta/secret.txt"):
        assert users[who].get(url).status_code == 404, url
    serial = tree["beta/secret.txt"].current_id
    for url in (
        node_url(tree, "beta/secret.txt", "upload"),
        node_url(tree, "beta/secret.txt", "edit"),
        node_url(tree, "beta/secret.txt", "move"),
        node_url(tree, "beta/secret.txt", "delete"),
        node_url(tree, "beta", "purge"),
        node_url(tree, "beta", "undelete"),
        version_url(serial - 1, "restore"),
    ):
        unchanged(users[who], "post", url, {"post": "yes", "destination": "alpha/moved.txt"}, status=404)
    unchanged(users[who], "post", node_url(tree, "beta", "grants"), {"user": who, "level": "manage"}, 404)


@pytest.mark.parametrize("who", ["reader", "writer", "manager", "superuser"])
def test_a_readable_path_shows_everywhere(users, tree, who):
    for url in read_pages(tree, "alpha/a.txt"):
        assert users[who].get(url).status_code == 200, url


def test_a_reader_may_not_write_restore_purge_or_grant(reader, tree):
    a = tree["alpha/a.txt"]
    page = reader.get(node_url(tree, "alpha/a.txt")).content.decode()
    for name in ("upload", "edit", "move", "delete", "purge"):
        assert node_url(tree, "alpha/a.txt", name) not in page
    assert version_url(a.current_id - 1, "restore") not in page and 'name="_grant"' not in page
    # The writes' pages need the node admin's model permissions first, then the level.
    for name in ("upload", "edit", "move", "versioning", "copy", "delete", "purge"):
        unchanged(reader, "post", node_url(tree, "alpha/a.txt", name), {"post": "yes"})
    unchanged(reader, "post", version_url(a.current_id - 1, "restore"), {"post": "yes"})
    unchanged(reader, "post", node_url(tree, "alpha", "grants"), {"user": "reader", "level": "manage"})
    assert reader.get(changelist()).context["action_form"] is None  # no action it may run


def test_a_writer_writes_inside_its_folder_only(writer, tree):
    a = tree["alpha/a.txt"]
    upload = node_url(tree, "alpha/a.txt", "upload")
    response = writer.post(upload, {"file": SimpleUploadedFile("a.txt", b"new\n")})
    assert response.status_code == 302 and api.open_content(api.lookup("alpha/a.txt")).read() == b"new\n"
    # Moving or copying out of the folder needs the write level at the destination too.
    unchanged(
        writer, "post", node_url(tree, "alpha/b.txt", "move"), {"destination": "beta/b.txt", "post": "yes"}
    )
    unchanged(
        writer, "post", node_url(tree, "alpha/b.txt", "copy"), {"destination": "beta/b.txt", "post": "yes"}
    )
    unchanged(
        writer, "post", reverse("admin:versioned_items_node_add"), {"folder-path": "new", "_folder": "1"}
    )
    moved = writer.post(node_url(tree, "alpha/b.txt", "move"), {"destination": "alpha/c.txt", "post": "yes"})
    assert moved.status_code == 302 and api.lookup("alpha/c.txt") is not None
    # Restore, purge and grants are for managers; a writer deletes and undeletes.
    unchanged(writer, "post", version_url(a.current_id, "restore"), {"post": "yes"})
    unchanged(writer, "post", node_url(tree, "alpha", "purge"), {"before": "2025-01-01", "post": "yes"})
    unchanged(writer, "post", node_url(tree, "alpha", "grants"), {"user": "writer", "level": "manage"})
    assert writer.post(node_url(tree, "alpha/sub/c.txt", "delete"), {"post": "yes"}).status_code == 302
    assert api.lookup("alpha/sub/c.txt") is None
    assert writer.post(node_url(tree, "alpha/sub/c.txt", "undelete"), {"post": "yes"}).status_code == 302
    assert api.lookup("alpha/sub/c.txt") is not None


def test_attributes_are_edited_where_the_user_may_write(django_user_model, tree):
    attribute_permissions = [f"{action}_attribute" for action in ("add", "change", "delete")]
    writer = staff_client(
        django_user_model, "attr-writer", "change_node", *attribute_permissions, level="write"
    )
    version = tree["alpha/a.txt"].current
    assert 'name="attributes-0-value"' in writer.get(version_url(version.serial)).content.decode()
    data = attribute_form(version, [], extra=[{"key": "k", "value": "v"}])
    assert writer.post(version_url(version.serial), data).status_code == 302
    assert api.get_attributes(version.serial) == {"k": "v"}
    # The model permissions without the write level: the page is read only.
    reader = staff_client(
        django_user_model, "attr-reader", "change_node", *attribute_permissions, level="read"
    )
    assert 'name="attributes-0-value"' not in reader.get(version_url(version.serial)).content.decode()
    unchanged(
        reader, "post", version_url(version.serial), attribute_form(version, [], [{"key": "x", "value": "y"}])
    )
    hidden = tree["top.txt"].current
    unchanged(
        writer,
        "post",
        version_url(hidden.serial),
        attribute_form(hidden, [], [{"key": "x", "value": "y"}]),
        404,
    )
    assert api.get_attributes(hidden.serial) == {}


def test_a_reader_of_one_folder_copies_into_another_it_may_write(django_user_model, tree):
    client = staff_client(django_user_model, "copier", *WRITES, level="read")
    api.grant("beta", user=client.user, level="write")
    copy = node_url(tree, "alpha/a.txt", "copy")
    assert copy in client.get(node_url(tree, "alpha/a.txt")).content.decode()
    assert client.post(copy, {"destination": "beta/a.txt", "post": "yes"}).status_code == 302
    assert api.open_content(api.lookup("beta/a.txt")).read() == b"alpha/a.txt two\n"
    unchanged(client, "post", copy, {"destination": "alpha/copy.txt", "post": "yes"})


def test_list_actions_reach_only_readable_rows_and_check_each_one(writer, tree):
    hidden = tree["beta/secret.txt"]
    before = snapshot()
    writer.post(changelist(), {"action": "delete_items", "_selected_action": [hidden.pk], "post": "yes"})
    assert snapshot() == before and api.lookup("beta/secret.txt") is not None
    chosen = [tree["alpha/a.txt"].pk]
    unchanged(
        writer,
        "post",
        changelist(),
        {"action": "move_items", "_selected_action": chosen, "folder": "beta", "post": "yes"},
    )


def test_a_manager_restores_and_purges_in_its_folder(manager, tree):
    a = tree["alpha/a.txt"]
    assert manager.post(version_url(a.current_id - 1, "restore"), {"post": "yes"}).status_code == 302
    assert api.lookup("alpha/a.txt").source == a.current_id - 1
    purge = {"before": "2025-01-01", "clusters": "1", "post": "yes"}
    assert manager.post(node_url(tree, "alpha", "purge"), purge).status_code == 302
    assert api.versions("alpha/a.txt").count() == 1
    unchanged(manager, "post", node_url(tree, "", "purge"), purge, status=404)  # the root is not readable


def test_permissions_and_grants_agree_on_restore_and_purge(django_user_model, tree):
    purger = django_user_model.objects.create_user("purger")
    purger.user_permissions.set(Permission.objects.filter(codename="purge_version"))
    purger = django_user_model.objects.get(pk=purger.pk)
    assert permissions.can_restore(purger, "top.txt") and permissions.can_purge(purger, "")
    assert grants.can(purger, "top.txt", "manage")
    local = django_user_model.objects.create_user("local")
    api.grant("alpha", user=local, level="manage")
    assert permissions.can_restore(local, "alpha/a.txt") and not permissions.can_restore(local, "top.txt")
    assert permissions.can_purge(local) and permissions.can_restore(local)  # somewhere: offer the actions
    plain = django_user_model.objects.create_user("plain")
    assert not permissions.can_purge(plain) and not permissions.can_restore(plain, "alpha/a.txt")


# --- the grants section ----------------------------------------------------------------------


def test_the_node_page_shows_the_grants_with_inherited_ones_marked(reader, tree):
    api.grant("alpha/sub", group=Group.objects.create(name="team"), level="write")
    page = reader.get(node_url(tree, "alpha/sub/c.txt"))
    assert [(g.node.path, g.level, g.inherited) for g in page.context["grants"]] == [
        ("alpha", "read", True),
        ("alpha/sub", "write", True),
    ]
    html = page.content.decode()
    assert "inherited from" in html and f"{node_url(tree, 'alpha')}#grants" in html
    assert page.context["grant_form"] is None and 'name="_revoke"' not in html
    own = reader.get(node_url(tree, "alpha")).context["grants"]
    assert [(g.user.username, g.inherited) for g in own] == [("reader", False)]


def test_a_manager_grants_changes_and_revokes_with_an_audit_trail(manager, tree):
    alpha = tree["alpha"]
    page = manager.get(node_url(tree, "alpha")).content.decode()
    assert 'name="_grant"' in page and 'name="_revoke"' in page
    grants_page = node_url(tree, "alpha", "grants")
    Group.objects.create(name="team")
    type(manager.user).objects.create_user("zoe")
    assert manager.post(grants_page, {"user": "zoe", "level": "read"}).status_code == 302
    assert manager.post(grants_page, {"user": "zoe", "level": "write"}).status_code == 302
    assert manager.post(grants_page, {"group": "team", "level": "manage"}).status_code == 302
    team = Grant.objects.get(group__name="team")
    done = manager.post(grants_page, {"grant": team.pk, "_revoke": "1"}, follow=True)
    assert done.status_code == 200
    assert "Revoked the manage grant of group team on alpha." in done.content.decode()
    # The manager gives its own manage level away: then the forms are gone, the history stays.
    assert manager.post(grants_page, {"user": "manager", "level": "read"}).status_code == 302
    assert [(g.user.username, g.level) for g in api.grants("alpha")] == [
        ("manager", "read"),
        ("zoe", "write"),
    ]
    entries = LogEntry.objects.order_by("pk")
    assert [(e.action_flag, e.object_id, e.change_message) for e in entries] == [
        (CHANGE, str(alpha.pk), "Granted read on alpha to user zoe."),
        (CHANGE, str(alpha.pk), "Changed the grant of user zoe on alpha from read to write."),
        (CHANGE, str(alpha.pk), "Granted manage on alpha to group team."),
        (CHANGE, str(alpha.pk), "Revoked the manage grant of group team on alpha."),
        (CHANGE, str(alpha.pk), "Changed the grant of user manager on alpha from manage to read."),
    ]
    history = manager.get(node_url(tree, "alpha", "history")).content.decode()
    assert "Granted read on alpha to user zoe." in history
    assert manager.get(node_url(tree, "alpha")).context["grant_form"] is None
    unchanged(manager, "post", grants_page, {"user": "zoe", "level": "manage"})


def test_the_audit_trail_shows_in_recent_actions(admin_client, tree):
    response = admin_client.post(node_url(tree, "beta", "grants"), {"user": "admin", "level": "write"})
    assert response.status_code == 302 and response.url.endswith("#grants")
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert node_url(tree, "beta") in index and "beta" in index


@pytest.mark.parametrize(
    "data, message",
    [
        ({"user": "ghost", "level": "read"}, "there is no user named &#x27;ghost&#x27;"),
        ({"group": "ghosts", "level": "read"}, "there is no group named &#x27;ghosts&#x27;"),
        ({"user": "manager", "group": "team", "level": "read"}, "Name a user or a group"),
        ({"level": "read"}, "Name a user or a group"),
        ({"user": "manager", "level": "owner"}, "Select a valid choice"),
        ({"user": "manager", "level": ""}, "This field is required"),
        ({"user": "a\x00b", "level": "read"}, "Null characters are not allowed"),
        ({"user": "manager", "level": "manage"}, "already has manage on alpha; nothing was changed"),
        ({"grant": "999999", "_revoke": "1"}, "There is no grant with the id 999999 on alpha"),
        ({"grant": "x", "_revoke": "1"}, "Enter a whole number"),
    ],
)
def test_grant_form_rejections_write_nothing(manager, tree, data, message):
    Group.objects.create(name="team")
    response = unchanged(manager, "post", node_url(tree, "alpha", "grants"), data, status=400)
    assert message in response.content.decode()


def test_an_inherited_grant_is_not_revoked_below_its_folder(manager, tree):
    inherited = Grant.objects.get(user=manager.user)
    response = unchanged(
        manager, "post", node_url(tree, "alpha/sub", "grants"), {"grant": inherited.pk, "_revoke": "1"}, 400
    )
    assert "removed on its folder" in response.content.decode()


def test_grant_changes_are_csrf_protected_posts(django_user_model, tree):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    unchanged(client, "post", node_url(tree, "alpha", "grants"), {"user": "root", "level": "read"})


# --- the setting's check ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, ids",
    [("", []), ("read", []), ("write", ["versioned_items.E002"]), (None, ["versioned_items.E002"])],
)
def test_default_access_is_checked_at_startup(settings, value, ids):
    settings.VERSIONED_ITEMS = {"DEFAULT_ACCESS": value}
    problems = checks.check_default_access()
    assert [p.id for p in problems] == ids
    if problems:
        assert repr(value) in problems[0].msg and "'read'" in problems[0].hint


# --- in a browser ----------------------------------------------------------------------------

SHOTS = Path("/tmp/shots")


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium is missing")
@pytest.mark.django_db(transaction=True)
def test_a_manager_gives_a_grant_from_the_node_page_in_a_browser(live_server, django_user_model):
    from playwright.sync_api import expect, sync_playwright

    from ..site.test_browser import CHROMIUM, CHROMIUM_ARGS

    with api.batch():
        for path in ALPHA:
            api.put(path, f"{path}\n", user="ann")
    manager = django_user_model.objects.create_user("manager", password="pw", is_staff=True)
    manager.user_permissions.set(node_permissions("view_node", *WRITES))
    api.grant("", group=Group.objects.create(name="everyone-reads"), level="read")
    api.grant("alpha", user=manager, level="manage")
    django_user_model.objects.create_user("zoe")
    SHOTS.mkdir(exist_ok=True)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # see tests/site/test_browser.py
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            tab = browser.new_page(base_url=live_server.url, viewport={"width": 1280, "height": 900})
            tab.goto("/admin/login/?next=/admin/")
            tab.fill("input[name=username]", "manager")
            tab.fill("input[name=password]", "pw")
            tab.click("input[type=submit]")
            tab.wait_for_url("**/admin/")
            tab.goto(reverse("admin:versioned_items_node_change", args=[Node.objects.get(path="alpha").pk]))
            tab.fill(".vi-grant-form input[name=user]", "zoe")
            tab.select_option(".vi-grant-form select[name=level]", "write")
            tab.click(".vi-grant-form input[name=_grant]")
            expect(tab.locator(".messagelist")).to_contain_text("Granted write on alpha to user zoe.")
            expect(tab.locator(".vi-grants tr.vi-own")).to_have_count(2)
            expect(tab.locator(".vi-grants tr.vi-inherited")).to_contain_text("everyone-reads")
            tab.locator("#grants").scroll_into_view_if_needed()
            tab.screenshot(path=str(SHOTS / "admin-grants-1280.png"), full_page=True)
            tab.set_viewport_size({"width": 390, "height": 844})
            tab.reload()
            tab.screenshot(path=str(SHOTS / "admin-grants-390.png"), full_page=True)
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    assert api.can(django_user_model.objects.get(username="zoe"), "alpha/a.txt", "write")


def test_the_breadcrumbs_link_only_the_ancestors_the_user_may_open(tree, reader, admin_client):
    """A grant on ``alpha`` does not reach the root: its crumb is text, not a link to a 404."""
    root, alpha, sub = (tree[p] for p in ("", "alpha", "alpha/sub"))
    change = "admin:versioned_items_node_change"

    def crumbs(client):
        page = client.get(node_url(tree, "alpha/sub/c.txt")).content.decode()
        return page[page.index('class="breadcrumbs"') :].split("</div>", 1)[0]

    mine = crumbs(reader)
    assert reverse(change, args=[alpha.pk]) in mine and reverse(change, args=[sub.pk]) in mine
    assert reverse(change, args=[root.pk]) not in mine and "› / ›" in " ".join(mine.split())
    assert reader.get(reverse(change, args=[root.pk])).status_code == 404
    assert reverse(change, args=[root.pk]) in crumbs(admin_client)
