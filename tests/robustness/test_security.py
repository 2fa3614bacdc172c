"""Security: escaped snippets and diffs, parameterised SQL, logins and permissions.

- Highlighted snippets and diffs are HTML-escaped: an item whose content (and path) holds a
  ``<script>`` is indexed, searched and shown, and no page carries the tag.
- Paths, prefixes, markers, attribute values and filter values reach SQL only as parameters:
  every statement is captured with its parameters (``execute_wrapper``), and the hostile text
  is in the parameters and never in the SQL.
- Every page of the site needs a login; the admin's maintenance actions (restore, undelete,
  purge, index tasks) need their permission, checked with a staff user who has every view
  permission but not those, and once more with the permission (so the test can fail).
"""

import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from versioned_items import api
from versioned_items.models import Cluster, Version
from versioned_items.search import indexing
from versioned_items.search.api import search

from ..helpers import snapshot

SCRIPT = "<script>alert('pwned')</script>"
# No "%" or "_": LIKE patterns escape those, and the text must be found verbatim in the parameters.
HOSTILE = "zq'\"); DROP TABLE vinode; --"


def url(name: str, *args, **kwargs) -> str:
    try:
        return reverse(name, args=args, kwargs=kwargs)
    except NoReverseMatch:
        pytest.skip(f"{name} is not installed yet")


def assert_escaped(html: str) -> None:
    """The hostile script tag is on the page, but only as escaped text (pages have script
    tags of their own, so look for this one)."""
    assert "<script>alert(" not in html, html[html.find("<script>alert(") :][:300]
    assert "&lt;script&gt;alert(" in html


# --- escaping --------------------------------------------------------------------------------


@pytest.fixture
def hostile_item(search_index):
    """An item whose path and content hold a script tag, in two versions, indexed."""
    api.put(f"sec/{SCRIPT}.html", f"first draft payload {SCRIPT} end".encode(), content_type="text/plain")
    api.put(f"sec/{SCRIPT}.html", f"second draft payload {SCRIPT} more".encode(), content_type="text/plain")
    indexing.wait_for_index()
    return f"sec/{SCRIPT}.html"


@pytest.mark.django_db
@pytest.mark.parametrize("history", [False, True])
def test_search_snippets_escape_everything_but_the_marks(hostile_item, history):
    page = search("payload", history=history)
    assert page.total == (2 if history else 1)
    for hit in page:
        for snippet in hit.highlights.values():
            tags = set(re.findall(r"</?([a-zA-Z]+)", snippet))
            assert tags <= {"mark"}, snippet
            assert "&lt;script&gt;" in snippet or "<mark>" in snippet
        assert "<mark>payload</mark>" in hit.highlights["text"]
        assert "&lt;script&gt;" in hit.highlights["text"]


@pytest.fixture
def reader(client, django_user_model):
    user = django_user_model.objects.create_user("reader", password="pw")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_site_search_page_escapes_snippets(hostile_item, reader):
    response = reader.get(url("versioned_items:search"), {"q": "payload"})
    assert response.status_code == 200
    assert_escaped(response.content.decode())


@pytest.mark.django_db
def test_site_item_page_and_diff_escape_content(hostile_item, reader):
    serials = sorted(Version.objects.values_list("serial", flat=True))
    response = reader.get(url("versioned_items:item", hostile_item))
    assert response.status_code == 200
    assert_escaped(response.content.decode())
    response = reader.get(url("versioned_items:diff"), {"old": serials[0], "new": serials[1]})
    assert response.status_code == 200
    assert_escaped(response.content.decode())


@pytest.mark.django_db
def test_admin_search_and_diff_escape(hostile_item, admin_client):
    response = admin_client.get(url("admin:versioned_items_node_search"), {"q": "payload"})
    assert response.status_code == 200
    assert_escaped(response.content.decode())
    serials = sorted(Version.objects.values_list("serial", flat=True))
    response = admin_client.get(
        url("admin:versioned_items_version_diff"), {"old": serials[0], "new": serials[1]}
    )
    assert response.status_code == 200
    assert_escaped(response.content.decode())


# --- parameterised SQL -----------------------------------------------------------------------


@contextmanager
def statements():
    """Capture (sql, params) of every statement, before the driver sees them."""
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield seen


def _flat(params) -> str:
    if params is None:
        return ""
    if isinstance(params, dict):
        params = list(params.values())
    return " ".join(_flat(p) if isinstance(p, (list, tuple, dict)) else str(p) for p in params)


def assert_parameterised(seen, text=HOSTILE):
    assert seen, "no statement was run"
    assert not [sql for sql, _ in seen if text in sql or "DROP TABLE" in sql], "hostile text in SQL"
    assert any(text in _flat(params) for _, params in seen), "the value never reached the database"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "operation",
    [
        "put",
        "lookup",
        "listing prefix",
        "listing marker",
        "listing paths filter",
        "filter value",
        "attribute value",
        "attribute keys prefix",
        "move",
        "purge",
    ],
)
def test_values_reach_sql_only_as_parameters(search_index, operation):
    path = f"sql/{HOSTILE}/item.txt"
    version = api.put(path, b"some content", attributes={"k": "v"})
    calls = {
        "put": lambda: api.put(path, b"new content"),
        "lookup": lambda: api.lookup(path),
        "listing prefix": lambda: api.list_latest("sql", prefix=HOSTILE, delimiter="/"),
        "listing marker": lambda: api.list_latest("sql", marker=f"sql/{HOSTILE}", delimiter="/"),
        "listing paths filter": lambda: api.list_latest("sql", paths_filter=[f"sql/{HOSTILE}*", path]),
        "filter value": lambda: api.list_latest("sql", filter=f'k="{HOSTILE}", k!="{HOSTILE}"'),
        "attribute value": lambda: api.set_attributes(version.serial, {"k": HOSTILE}),
        "attribute keys prefix": lambda: api.latest_attribute_keys("sql", prefixes=[f"sql/{HOSTILE}"]),
        "move": lambda: api.move(f"sql/{HOSTILE}", f"sql/{HOSTILE}-moved"),
        "purge": lambda: api.purge(f"sql/{HOSTILE}", subtree=True, clusters=[Cluster.HISTORY]),
    }
    with statements() as seen:
        calls[operation]()
    assert_parameterised(seen)


# --- logins ----------------------------------------------------------------------------------


def site_urls():
    found = []
    for name, args in [
        ("home", []),
        ("browse", []),
        ("browse", ["docs/"]),
        ("item", ["docs/a.txt"]),
        ("diff", []),
        ("content", [1]),
        ("restore", [1]),
        ("search", []),
    ]:
        try:
            found.append(reverse(f"versioned_items:{name}", args=args))
        except NoReverseMatch:
            continue
    return found


@pytest.mark.django_db
def test_every_site_page_needs_a_login(client):
    urls = site_urls()
    assert urls, "the site's URLs are not installed"
    api.put("docs/a.txt", b"secret")
    for page in urls:
        for method in (client.get, client.post):
            response = method(page)
            assert response.status_code in (302, 403), (page, response.status_code)
            if response.status_code == 302:
                assert "login" in response["Location"], (page, response["Location"])
            assert b"secret" not in response.content


@pytest.mark.django_db
def test_admin_pages_need_a_staff_login(client, django_user_model):
    api.put("docs/a.txt", b"secret")
    node = api.get_node("docs/a.txt")
    pages = [
        reverse("admin:versioned_items_node_changelist"),
        reverse("admin:versioned_items_node_change", args=[node.pk]),
        reverse("admin:versioned_items_version_changelist"),
    ]
    user = django_user_model.objects.create_user("not-staff", password="pw")
    for login in (None, user):
        if login:
            client.force_login(login)
        for page in pages:
            response = client.get(page)
            assert response.status_code == 302 and "login" in response["Location"], (
                page,
                response.status_code,
            )


# --- permissions of the maintenance actions --------------------------------------------------

VIEW = ["view_node", "view_version", "view_attribute", "view_statistics"]
EXTRA = {"restore": "restore_version", "purge": "purge_version", "index": "manage_index"}


@pytest.fixture
def staff(client, django_user_model):
    """A staff user with every view permission and nothing else; ``grant(name)`` adds one."""
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=VIEW))
    client.force_login(user)

    def grant(name):
        permission = Permission.objects.filter(codename=EXTRA[name]).first()
        assert permission is not None, f"the permission {EXTRA[name]!r} is not defined"
        user.user_permissions.add(permission)
        # Permissions are cached on the user object the client's session loads anew.
        client.force_login(type(user).objects.get(pk=user.pk))

    client.grant = grant
    return client


@pytest.fixture
def history(search_index):
    now = timezone.now()
    api.put("maint/a.txt", b"one", mtime=now - timedelta(hours=2))
    api.put("maint/a.txt", b"two", mtime=now - timedelta(hours=1))
    api.delete("maint/a.txt")
    indexing.wait_for_index()
    node = api.get_node("maint/a.txt")
    first = Version.objects.filter(node=node).order_by("serial").first()
    return node, first


def _maintenance_requests(node, first):
    """(permission, description, request) for each maintenance action, as a POST that confirms."""
    changelist_node = reverse("admin:versioned_items_node_changelist")
    changelist_version = reverse("admin:versioned_items_version_changelist")
    selected = {"_selected_action": [node.pk], "post": "yes"}
    before = (timezone.now() - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M")
    return [
        (
            "restore",
            "undelete action",
            lambda c: c.post(changelist_node, {**selected, "action": "undelete_selected"}),
        ),
        (
            "restore",
            "undelete page",
            lambda c: c.post(url("admin:versioned_items_node_undelete", node.pk), {"post": "yes"}),
        ),
        (
            "restore",
            "restore action",
            lambda c: c.post(
                changelist_version,
                {"_selected_action": [first.serial], "post": "yes", "action": "restore_selected"},
            ),
        ),
        (
            "restore",
            "restore page",
            lambda c: c.post(url("admin:versioned_items_version_restore", first.serial), {"post": "yes"}),
        ),
        ("restore", "site restore", lambda c: c.post(url("versioned_items:restore", first.serial))),
        (
            "purge",
            "purge action",
            lambda c: c.post(
                changelist_node,
                {**selected, "action": "purge_selected", "before": before, "clusters": ["1", "2"]},
            ),
        ),
        (
            "purge",
            "purge page",
            lambda c: c.post(
                url("admin:versioned_items_node_purge", node.pk),
                {"post": "yes", "before": before, "clusters": ["1", "2"]},
            ),
        ),
        (
            "index",
            "index rebuild",
            lambda c: c.post(url("admin:versioned_items_node_index"), {"task": "rebuild", "post": "yes"}),
        ),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("number", range(8))
def test_maintenance_needs_its_permission(staff, history, number, monkeypatch):
    node, first = history
    permission, what, send = _maintenance_requests(node, first)[number]
    rebuilds = []
    rebuild = indexing.rebuild
    monkeypatch.setattr(indexing, "rebuild", lambda *a, **k: rebuilds.append(1) or rebuild(*a, **k))
    before = snapshot()
    index_before = (list(indexing.dump()), list(indexing.dump(history=True)))
    response = send(staff)
    assert response.status_code in (200, 302, 403), (what, response.status_code)
    assert snapshot() == before, f"{what} changed the store without the permission"
    assert rebuilds == [], f"{what} rebuilt the index without the permission"
    assert (list(indexing.dump()), list(indexing.dump(history=True))) == index_before
    # With the permission, the same request does its work: the checks above could fail.
    staff.grant(permission)
    response = send(staff)
    assert response.status_code in (200, 302), (what, response.status_code)
    assert snapshot() != before or rebuilds, f"{what} did nothing even with the permission"
