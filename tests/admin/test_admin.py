"""versioned_items.admin: lists, node and version pages, attributes, restore, undelete, purge."""

from datetime import UTC, datetime

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from versioned_items import admin, api
from versioned_items.models import Attribute, Cluster, Node, Version
from versioned_items.signals import versions_changed

from ..helpers import assert_statistics_exact, snapshot

pytestmark = pytest.mark.django_db

JAN, FEB, JUN = (datetime(2024, month, 1, tzinfo=UTC) for month in (1, 2, 6))


@pytest.fixture
def tree():
    """docs/a.txt (three versions), docs/b.txt (deleted), docs/img.png, top.txt."""
    with api.batch():
        a = [
            api.put("docs/a.txt", f"line {i}\n<b>x</b>\n", user=user, attributes={"rev": str(i)}, mtime=when)
            for i, (user, when) in enumerate([("ann", JAN), ("bob", FEB), ("cy", JUN)], 1)
        ]
        api.put("docs/b.txt", "bee\n", user="ann", mtime=JAN)
        api.delete("docs/b.txt", user="bob")
        api.put("docs/img.png", b"\x89PNG\x00", user="ann", mtime=FEB)
        api.put("top.txt", "top\n", user="ann", mtime=FEB)
    return {
        "a": a,
        "docs": Node.objects.get(path="docs"),
        "a_node": Node.objects.get(path="docs/a.txt"),
        "b_node": Node.objects.get(path="docs/b.txt"),
    }


def permission(codename, model=Version):
    """A permission row, as the migrations created it (the dedicated ones included)."""
    return Permission.objects.get(codename=codename, content_type=ContentType.objects.get_for_model(model))


@pytest.fixture
def staff(client, django_user_model):
    """A staff user who may view nodes and versions and edit attributes, but not restore or purge."""
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(
        permission("view_node", Node),
        permission("view_version"),
        permission("change_version"),
        *(permission(f"{action}_attribute", Attribute) for action in ("add", "change", "delete")),
    )
    client.force_login(user)
    client.user = user
    return client


def changelist(model="node"):
    return reverse(f"admin:versioned_items_{model}_changelist")


def node_page(node):
    return reverse("admin:versioned_items_node_change", args=[node.pk])


def version_page(version):
    return reverse("admin:versioned_items_version_change", args=[version.serial])


def full_counts(captured):
    """COUNT statements that are not bounded by a LIMIT subquery."""
    return [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and "LIMIT" not in q["sql"].upper()]


# --- lists -----------------------------------------------------------------------------------


def test_node_list_shows_each_node_with_its_current_version(admin_client, tree):
    response = admin_client.get(changelist())
    assert response.status_code == 200
    paths = [node.path for node in response.context["cl"].result_list]
    assert paths == ["", "docs", "docs/a.txt", "docs/b.txt", "docs/img.png", "top.txt"]
    html = response.content.decode()
    assert "6 nodes" in html and "deleted" in html and "image/png" in html
    assert reverse("admin:versioned_items_node_add") in html  # the write pages (test_admin_writes.py)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"cluster": "2"}, ["docs/b.txt"]),
        ({"cluster": "folder"}, ["", "docs"]),
        ({"type": "image/"}, ["docs/img.png"]),
        ({"user": "cy"}, ["docs/a.txt"]),
        ({"under": "docs"}, ["docs", "docs/a.txt", "docs/b.txt", "docs/img.png"]),
        (
            {
                "current__mtime__gte": "2024-01-15 00:00:00+00:00",
                "current__mtime__lt": "2024-03-01 00:00:00+00:00",
            },
            ["docs/img.png", "top.txt"],
        ),
    ],
)
def test_node_list_filters(admin_client, tree, params, expected):
    response = admin_client.get(changelist(), params)
    assert [node.path for node in response.context["cl"].result_list] == expected


def test_version_list_filters(admin_client, tree):
    response = admin_client.get(changelist("version"), {"under": "docs/a.txt", "user": "bob"})
    assert [v.serial for v in response.context["cl"].result_list] == [tree["a"][1].serial]


def test_lists_page_without_counting_the_table(admin_client, tree, monkeypatch):
    monkeypatch.setattr(django_admin.site._registry[Node], "list_per_page", 4)
    monkeypatch.setattr(admin.changelist, "COUNT_LIMIT", 5)
    with CaptureQueriesContext(connection) as captured:
        first = admin_client.get(changelist())
    assert full_counts(captured) == []
    cl = first.context["cl"]
    assert [n.path for n in cl.result_list] == ["", "docs", "docs/a.txt", "docs/b.txt"]
    assert cl.capped and "more than 5 nodes" in first.content.decode()
    second = admin_client.get(changelist() + cl.next_url)
    assert [n.path for n in second.context["cl"].result_list] == ["docs/img.png", "top.txt"]
    assert second.context["cl"].next_url is None and second.context["cl"].previous_url


def test_list_query_counts_do_not_grow_with_the_tree(admin_client, tree, django_assert_num_queries):
    # session, user, bounded count, page of nodes with their current versions
    with django_assert_num_queries(4):
        admin_client.get(changelist())
    with api.batch():
        for i in range(40):
            api.put(f"more/f{i}.txt", "x", attributes={"k": "v"})
    with django_assert_num_queries(4):
        admin_client.get(changelist())
    with django_assert_num_queries(4):
        admin_client.get(changelist("version"))


def test_bad_filter_values_get_a_friendly_400(admin_client, tree):
    response = admin_client.get(changelist(), {"current__mtime__gte": "not-a-date"}, follow=True)
    assert response.status_code == 400
    assert "filter values in the address are not valid" in response.content.decode()
    assert (
        admin_client.get(changelist(), {"p": "99"}, follow=True).status_code == 404
    )  # past the last page (docs/limits.md)


# --- the node page ---------------------------------------------------------------------------


def test_node_page_shows_breadcrumbs_children_statistics_and_history(admin_client, tree):
    docs = admin_client.get(node_page(tree["docs"]))
    assert docs.status_code == 200
    assert [n.path for n in docs.context["ancestors"]] == [""]
    assert [n.path for n in docs.context["children"]] == ["docs/a.txt", "docs/b.txt", "docs/img.png"]
    statistics = {row.cluster: (row.population, row.size) for row in docs.context["statistics"]}
    assert statistics[Cluster.NORMAL] == (2, len("line 3\n<b>x</b>\n") + len(b"\x89PNG\x00"))
    page = admin_client.get(node_page(tree["a_node"]))
    html = page.content.decode()
    assert [v.serial for v in page.context["versions"]] == [v.serial for v in reversed(tree["a"])]
    assert "rev=2" in html and "cy" in html
    assert [n.path for n in page.context["ancestors"]] == ["", "docs"]
    assert reverse("admin:versioned_items_version_restore", args=[tree["a"][0].serial]) in html


def test_node_page_pages_children_and_history(admin_client, tree, monkeypatch):
    monkeypatch.setattr(admin.nodes, "NODE_PAGE_SIZE", 2)
    docs = admin_client.get(node_page(tree["docs"]))
    assert docs.context["children_next"] == "docs/b.txt"
    more = admin_client.get(node_page(tree["docs"]), {"after": docs.context["children_next"]})
    assert [n.path for n in more.context["children"]] == ["docs/img.png"]
    a = admin_client.get(node_page(tree["a_node"]))
    older = admin_client.get(node_page(tree["a_node"]), {"older": a.context["versions_next"]})
    assert [v.serial for v in older.context["versions"]] == [tree["a"][0].serial]


def test_node_page_query_count_does_not_grow(admin_client, tree, django_assert_num_queries):
    # session, user, node + current, children with their current versions, versions,
    # ancestors, statistics, the grants that apply (issue 12); and the versions' attributes
    # where there are versions
    for _ in range(2):
        with django_assert_num_queries(8):
            admin_client.get(node_page(tree["docs"]))
        with django_assert_num_queries(9):
            admin_client.get(node_page(tree["a_node"]))
        with api.batch():
            for i in range(30):
                api.put(f"docs/more{i}.txt", "x", attributes={"k": str(i)})
                api.put("docs/a.txt", f"v{i}", attributes={"k": str(i)})


def test_node_page_errors(admin_client, tree):
    assert admin_client.get(reverse("admin:versioned_items_node_change", args=[999999])).status_code == 404
    assert admin_client.get(node_page(tree["docs"]), {"older": "x"}).status_code == 400


# --- versions and attributes -----------------------------------------------------------------


def test_version_page_shows_escaped_content_and_links(admin_client, tree):
    response = admin_client.get(reverse("admin:versioned_items_version_change", args=[tree["a"][2].serial]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "line 3\n&lt;b&gt;x&lt;/b&gt;" in html
    assert f"?old={tree['a'][1].serial}&amp;new={tree['a'][2].serial}" in html
    assert f"<h1>Version #{tree['a'][2].serial}</h1>" in html and "<h2>docs/a.txt</h2>" in html


def attribute_form(version, rows, extra=()):
    """POST data for the attribute inline: existing ``rows`` (Attribute, changes) and new ones."""
    prefix = "attributes"
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows) + len(extra)),
        f"{prefix}-INITIAL_FORMS": str(len(rows)),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
        "_continue": "1",
    }
    for i, (attribute, changes) in enumerate(rows):
        values = {
            "id": attribute.pk,
            "version": version.serial,
            "domain": attribute.domain,
            "key": attribute.key,
            "value": attribute.value,
            **changes,
        }
        data.update({f"{prefix}-{i}-{k}": v for k, v in values.items()})
    for j, values in enumerate(extra, len(rows)):
        data.update(
            {f"{prefix}-{j}-{k}": v for k, v in {"version": version.serial, "domain": "", **values}.items()}
        )
    return data


@pytest.fixture
def changes_sent():
    sent = []

    def record(sender, changes, **kwargs):
        sent.append(set(changes.versions))

    versions_changed.connect(record, sender=Version)
    yield sent
    versions_changed.disconnect(record, sender=Version)


def test_attributes_are_edited_inline_through_the_api(staff, tree, changes_sent):
    version = tree["a"][2]
    attribute = Attribute.objects.get(version=version, key="rev")
    url = reverse("admin:versioned_items_version_change", args=[version.serial])
    data = attribute_form(
        version, [(attribute, {"value": "three"})], extra=[{"key": "color", "value": "red"}]
    )
    response = staff.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert api.get_attributes(version.serial) == {"color": "red", "rev": "three"}
    assert changes_sent == [{version.serial}]  # one API operation, which the indexes follow
    # Rename a key and delete another.
    rows = [
        (a, {"key": "colour"} if a.key == "color" else {"DELETE": "on"})
        for a in Attribute.objects.filter(version=version).order_by("key")
    ]
    staff.post(url, attribute_form(version, rows))
    assert api.get_attributes(version.serial) == {"colour": "red"}
    assert Version.objects.get(serial=version.serial).size == version.size


def test_attribute_edit_needs_change_permission(client, django_user_model, tree):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(permission("view_version"))
    client.force_login(viewer)
    version = tree["a"][2]
    url = reverse("admin:versioned_items_version_change", args=[version.serial])
    assert client.get(url).status_code == 200
    attribute = Attribute.objects.get(version=version)
    assert client.post(url, attribute_form(version, [(attribute, {"value": "x"})])).status_code == 403
    assert api.get_attributes(version.serial) == {"rev": "3"}


def test_nodes_and_versions_cannot_be_added_changed_or_deleted_by_forms(admin_client, tree):
    version, node = tree["a"][2], tree["a_node"]
    # Nodes are added and deleted by the write pages of tests/admin/test_admin_writes.py, not
    # by model forms: the add page uploads, the delete page asks first.
    add = admin_client.get(reverse("admin:versioned_items_node_add"))
    assert "Upload files" in add.content.decode() and "adminform" not in add.context
    before = snapshot()
    assert admin_client.post(reverse("admin:versioned_items_node_delete", args=[node.pk])).status_code == 200
    assert snapshot() == before
    assert admin_client.get(reverse("admin:versioned_items_version_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:versioned_items_version_delete", args=[version.serial])).status_code
        == 403
    )
    # The version's own fields are read-only: a POST changes nothing but attributes.
    url = reverse("admin:versioned_items_version_change", args=[version.serial])
    admin_client.post(url, {**attribute_form(version, []), "size": "1", "muser": "mallory"})
    assert Version.objects.filter(serial=version.serial, size=version.size, muser="cy").exists()


def test_diff_and_content(admin_client, tree):
    a1, _, a3 = tree["a"]
    response = admin_client.get(
        reverse("admin:versioned_items_version_diff"), {"old": a1.serial, "new": a3.serial}
    )
    html = response.content.decode()
    assert response.status_code == 200 and "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert admin_client.get(reverse("admin:versioned_items_version_diff"), {"old": "x"}).status_code == 400
    assert (
        admin_client.get(
            reverse("admin:versioned_items_version_diff"), {"old": 999998, "new": a1.serial}
        ).status_code
        == 404
    )
    download = admin_client.get(reverse("admin:versioned_items_version_content", args=[a1.serial]))
    assert download["Content-Disposition"] == 'attachment; filename="a.txt"'


# --- restore and undelete --------------------------------------------------------------------


def test_restore_asks_for_confirmation_then_restores(admin_client, tree):
    first = tree["a"][0]
    url = reverse("admin:versioned_items_version_restore", args=[first.serial])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "Yes, restore" in confirm.content.decode()
    assert api.lookup("docs/a.txt") == tree["a"][2]
    done = admin_client.post(url, {"post": "yes"})
    assert done.status_code == 302 and done["Location"] == node_page(tree["a_node"])
    current = api.lookup("docs/a.txt")
    assert current.source == first.serial and current.muser == "admin"
    assert_statistics_exact()


def test_restore_action_on_the_version_list(admin_client, tree):
    a1, a2, _ = tree["a"]
    data = {"action": "restore_selected", "_selected_action": [a1.serial, a2.serial]}
    refused = admin_client.post(changelist("version"), {**data, "index": "0"}, follow=True)
    assert "at most one version per item" in refused.content.decode()
    confirm = admin_client.post(
        changelist("version"), {"action": "restore_selected", "index": "0", "_selected_action": [a2.serial]}
    )
    assert confirm.status_code == 200 and "docs/a.txt #" in confirm.content.decode()
    admin_client.post(
        changelist("version"), {"action": "restore_selected", "_selected_action": [a2.serial], "post": "yes"}
    )
    assert api.lookup("docs/a.txt").source == a2.serial


def test_undelete_from_the_node_page_and_the_list(admin_client, tree):
    url = reverse("admin:versioned_items_node_undelete", args=[tree["b_node"].pk])
    assert "Yes, undelete" in admin_client.get(url).content.decode()
    admin_client.post(url, {"post": "yes"})
    assert api.open_content(api.lookup("docs/b.txt")).read() == b"bee\n"
    api.delete("docs/b.txt")
    admin_client.post(
        changelist(), {"action": "undelete_selected", "_selected_action": [tree["b_node"].pk], "post": "yes"}
    )
    assert api.lookup("docs/b.txt") is not None


def test_staff_without_the_permission_cannot_restore_undelete_or_purge(staff, tree):
    a1 = tree["a"][0]
    for url in (
        reverse("admin:versioned_items_version_restore", args=[a1.serial]),
        reverse("admin:versioned_items_node_undelete", args=[tree["b_node"].pk]),
        reverse("admin:versioned_items_node_purge", args=[tree["docs"].pk]),
    ):
        assert staff.get(url).status_code == 403, url
        assert staff.post(url, {"post": "yes", "before": "2024-03-01"}).status_code == 403, url
    for action, model in (
        ("undelete_selected", "node"),
        ("purge_selected", "node"),
        ("restore_selected", "version"),
    ):
        selected = tree["b_node"].pk if model == "node" else a1.serial
        staff.post(
            changelist(model),
            {
                "action": action,
                "_selected_action": [selected],
                "post": "yes",
                "before": "2024-03-01",
                "clusters": "1",
            },
        )
    page = staff.get(node_page(tree["a_node"])).content.decode()
    assert "Restore" not in page and "Purge" not in page
    assert "Undelete" not in staff.get(node_page(tree["b_node"])).content.decode()
    restore_url = reverse("admin:versioned_items_version_restore", args=[a1.serial])
    assert restore_url not in staff.get(version_page(a1)).content.decode()
    assert staff.get(changelist()).context["action_form"] is None  # no action it may run
    assert staff.get(changelist("version")).context["action_form"] is None
    assert api.lookup("docs/a.txt") == tree["a"][2] and api.lookup("docs/b.txt") is None
    assert api.versions("docs/a.txt").count() == 3


@pytest.mark.parametrize("codename", ["restore_version", "purge_version"])
def test_a_dedicated_permission_is_manage_everywhere(staff, tree, codename):
    # Issue 12: restore_version and purge_version are each the manage level on every path,
    # which restores, undeletes and purges (before it, each allowed only its own operation).
    staff.user.user_permissions.add(permission(codename))
    a1 = tree["a"][0]
    restore_url = reverse("admin:versioned_items_version_restore", args=[a1.serial])
    assert restore_url in staff.get(node_page(tree["a_node"])).content.decode()
    assert restore_url in staff.get(version_page(a1)).content.decode()
    assert "Undelete" in staff.get(node_page(tree["b_node"])).content.decode()
    assert "Purge" in staff.get(node_page(tree["docs"])).content.decode()
    assert staff.post(restore_url, {"post": "yes"}).status_code == 302
    assert api.lookup("docs/a.txt").source == a1.serial
    undelete = reverse("admin:versioned_items_node_undelete", args=[tree["b_node"].pk])
    assert staff.post(undelete, {"post": "yes"}).status_code == 302
    assert api.lookup("docs/b.txt") is not None
    purge = reverse("admin:versioned_items_node_purge", args=[tree["docs"].pk])
    assert staff.post(purge, {"before": "2024-03-01", "clusters": "1", "post": "yes"}).status_code == 302
    assert api.versions("docs/a.txt").count() == 2  # #3 and the restored copy; #1, #2 are purged


# --- purge -----------------------------------------------------------------------------------


def test_purge_asks_for_a_date_then_says_what_goes(admin_client, tree):
    url = reverse("admin:versioned_items_node_purge", args=[tree["docs"].pk])
    ask = admin_client.get(url)
    assert ask.status_code == 200 and 'name="before"' in ask.content.decode()
    bad = admin_client.post(url, {"before": "next tuesday", "clusters": "1"})
    assert bad.status_code == 400 and "is not a date or time" in bad.content.decode()
    summary = admin_client.post(url, {"before": "2024-03-01", "clusters": "1"})
    html = summary.content.decode()
    # docs/a.txt's first two versions and docs/b.txt's only version went to history before March
    assert summary.context["total"] == (3, 2 * 16 + 4)
    assert (
        "3 versions of 36 bytes written before 2024-03-01 00:00:00" in html
        and 'name="post" value="yes"' in html
    )
    assert api.versions("docs/a.txt").count() == 3
    done = admin_client.post(url, {"before": "2024-03-01", "clusters": "1", "post": "yes"})
    assert done.status_code == 302
    assert [v.serial for v in api.versions("docs/a.txt")] == [tree["a"][2].serial]
    assert_statistics_exact()


def test_purge_action_on_overlapping_selection(admin_client, tree):
    selected = [tree["docs"].pk, tree["a_node"].pk]
    response = admin_client.post(
        changelist(),
        {"action": "purge_selected", "_selected_action": selected, "before": "2024-03-01", "clusters": "1"},
    )
    assert [label for label, _ in response.context["items"]] == ["docs"]
    assert response.context["total"][0] == 3


def test_outermost_keeps_only_the_tops_of_subtrees():
    nodes = [Node(path=p) for p in ["a/b", "a", "a-b", "a-b/c", "b"]]
    assert [n.path for n in admin.outermost(nodes)] == ["a", "a-b", "b"]
    assert [n.path for n in admin.outermost([Node(path=""), Node(path="x")])] == [""]


# --- search and the indexes ------------------------------------------------------------------


@pytest.fixture
def indexed_tree(tree, search_index):
    from versioned_items.search.indexing import wait_for_index

    wait_for_index()
    return tree


def admin_search(client, **params):
    return client.get(reverse("admin:versioned_items_node_search"), params)


def test_changelist_search_box_queries_the_index(admin_client, indexed_tree):
    box = admin_client.get(changelist()).content.decode()
    assert f'action="{reverse("admin:versioned_items_node_search")}"' in box and 'name="history"' in box
    response = admin_search(admin_client, q="line")
    html = response.content.decode()
    assert [hit.path for hit in response.context["results"]] == ["docs/a.txt"]
    assert node_page(indexed_tree["a_node"]) in html
    assert reverse("admin:versioned_items_version_change", args=[indexed_tree["a"][2].serial]) in html
    assert "<mark>line</mark>" in html


def test_admin_search_history_and_as_of(admin_client, indexed_tree):
    history = admin_search(admin_client, q="line", history="on")
    assert sorted(hit.serial for hit in history.context["results"]) == sorted(
        v.serial for v in indexed_tree["a"]
    )
    then = admin_search(admin_client, q="line", before="2024-03-01")
    assert [hit.serial for hit in then.context["results"]] == [indexed_tree["a"][1].serial]
    bad = admin_search(admin_client, q="line AND")
    assert bad.status_code == 400 and "ends with the operator" in bad.content.decode()


def test_admin_search_offers_a_spelling_suggestion(admin_client, indexed_tree):
    response = admin_search(admin_client, q="lnie", history="on")
    assert response.context["results"].suggestion == "line"
    assert '<a href="?history=on&amp;q=line">line</a>' in response.content.decode()  # still in history
    assert "Did you mean" not in admin_search(admin_client, q="line").content.decode()


def test_admin_search_shows_only_what_permissions_allow(client, django_user_model, indexed_tree):
    # Issue 12: view_node reaches the version pages too (view_version would be read everywhere);
    # what a user then reads is the grants' business, here DEFAULT_ACCESS = "read" (tests/settings.py).
    user = django_user_model.objects.create_user("nodes-only", password="pw", is_staff=True)
    user.user_permissions.add(permission("view_node", Node))
    client.force_login(user)
    latest = admin_search(client, q="line")
    assert latest.status_code == 200 and latest.context["results"].total == 1
    history = admin_search(client, q="line", history="on")
    assert history.status_code == 200 and history.context["results"].total == 3
    client.force_login(django_user_model.objects.create_user("nobody", password="pw", is_staff=True))
    assert admin_search(client, q="line").status_code == 403


def index_url(**params):
    url = reverse("admin:versioned_items_node_index")
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def test_index_panel_shows_status_and_asks_before_each_task(admin_client, indexed_tree):
    panel = admin_client.get(index_url())
    assert panel.status_code == 200
    status = panel.context["status"]
    assert [(index.name, index.documents, index.pending) for index in status.indexes] == [
        ("latest", 3, 0),
        ("history", 7, 0),
    ]
    html = panel.content.decode()
    assert html.count("never") == 4  # neither index was rebuilt or checked yet
    for task in ("check", "update", "rebuild"):
        confirm = admin_client.get(index_url(task=task))
        assert confirm.status_code == 200 and 'name="post" value="yes"' in confirm.content.decode()
    assert admin_client.get(index_url(task="explode")).status_code == 400


@pytest.mark.parametrize(
    "task, text",
    [
        ("check", "No differences"),
        ("update", "then fixed 0 documents"),
        ("rebuild", "Wrote 3 latest and 7 history documents"),
    ],
)
def test_index_tasks_run_from_the_admin(admin_client, indexed_tree, task, text):
    response = admin_client.post(index_url(), {"task": task, "post": "yes"})
    assert response.status_code == 200
    assert text in response.content.decode()


def test_index_panel_shows_the_library_status(admin_client, indexed_tree, monkeypatch):
    from versioned_items.search import indexing
    from versioned_items.search.models import IndexChange

    # Two changes wait in the outbox, one for each index.
    IndexChange.objects.bulk_create([IndexChange(kind=kind, object_id=1) for kind in IndexChange.Kind])
    admin_client.post(index_url(), {"task": "check", "post": "yes"})
    IndexChange.objects.bulk_create([IndexChange(kind=IndexChange.Kind.HISTORY, object_id=1)] * 2)
    calls = []
    real = indexing.index_status
    monkeypatch.setattr(indexing, "index_status", lambda: calls.append(1) or real())
    panel = admin_client.get(index_url())
    assert calls == [1]  # the panel shows what the library reports, nothing of its own
    latest, history = panel.context["status"].indexes
    assert (latest.pending, history.pending) == (0, 2)
    assert latest.last_check is not None and latest.last_check_differences == 0
    html = panel.content.decode()
    assert "(oldest 0 s)" in html and "0 differences" in html


def test_index_panel_shows_failed_and_unfinished_runs(admin_client, indexed_tree):
    from versioned_items.search.models import MaintenanceRun

    MaintenanceRun.objects.create(kind="check", error="IndexUnavailable: the index is down")
    MaintenanceRun.objects.create(kind="rebuild")  # killed: never finished
    html = admin_client.get(index_url()).content.decode()
    assert "The last check, started" in html and "failed: IndexUnavailable: the index is down" in html
    assert "The last rebuild, started" in html and "has not finished" in html


def test_index_check_reports_differences(admin_client, indexed_tree):
    from versioned_items.search import indexing

    side = indexing.latest_side()
    side.backend.apply(side.index, [], [side.identifier(indexed_tree["a_node"].pk)])  # lose a document
    response = admin_client.post(index_url(), {"task": "check", "post": "yes"})
    html = response.content.decode()
    assert "Differences found." in html
    assert response.context["report"].diff.latest.missing == {indexed_tree["a_node"].pk}


def test_index_maintenance_needs_the_permission(staff, indexed_tree):
    from versioned_items.search.models import IndexChange, MaintenanceRun

    for task in ("check", "update", "rebuild"):
        assert staff.get(index_url(task=task)).status_code == 403
        assert staff.post(index_url(), {"task": task, "post": "yes"}).status_code == 403
    assert "Search indexes" not in staff.get(changelist()).content.decode()
    assert not MaintenanceRun.objects.exists()
    staff.user.user_permissions.add(permission("manage_index", IndexChange))
    assert staff.get(index_url()).status_code == 200
    assert "Search indexes" in staff.get(changelist()).content.decode()
    for task in ("check", "update", "rebuild"):
        assert staff.post(index_url(), {"task": task, "post": "yes"}).status_code == 200
    assert sorted(MaintenanceRun.objects.values_list("kind", flat=True)) == ["check", "rebuild", "update"]


def test_malformed_ids_and_filter_values_are_never_a_500(admin_client, tree):
    huge = "9" * 30
    assert admin_client.get(f"/admin/versioned_items/node/{huge}/change/").status_code == 404
    assert admin_client.get(f"/admin/versioned_items/version/{huge}/change/").status_code == 404
    assert admin_client.get(f"/admin/versioned_items/version/{huge}/restore/", follow=True).status_code == 404
    assert (
        admin_client.get(reverse("admin:versioned_items_version_diff"), {"old": huge, "new": 1}).status_code
        == 400
    )
    for params in ({"user": "a\x00b"}, {"type": "\x00"}, {"under": "a\x00b"}, {"under": "../x"}):
        response = admin_client.get(changelist(), params)
        assert response.status_code == 200, params
        assert len(response.context["cl"].result_list) == 6  # the bad value is ignored, with a warning


def test_index_panel_explains_a_missing_index(admin_client, indexed_tree, tmp_path):
    from haystack import connections

    connections.connections_info["vi_history"]["PATH"] = str(tmp_path / "nowhere")
    connections.reload("vi_history")
    response = admin_client.get(index_url())
    assert response.status_code == 200
    latest, history = response.context["status"].indexes
    assert latest.documents == 3 and history.documents is None and "nowhere" in history.problem
    assert "unavailable" in response.content.decode()


def test_actions_refuse_more_than_they_handle(admin_client, tree, monkeypatch):
    monkeypatch.setattr(admin.base, "MAX_SELECTED", 2)
    response = admin_client.post(
        changelist(),
        {
            "action": "purge_selected",
            "select_across": "1",
            "index": "0",
            "_selected_action": [tree["docs"].pk],
        },
        follow=True,
    )
    assert "Select at most 2 objects" in response.content.decode()
    assert api.versions("docs/a.txt").count() == 3
