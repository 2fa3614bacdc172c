"""versioned_items.views: the site's pages (browse, item, diff, content, restore, search)."""

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from versioned_items import api
from versioned_items.site import urls

pytestmark = pytest.mark.django_db

JAN, MAR, JUN = (datetime(2024, month, 1, tzinfo=UTC) for month in (1, 3, 6))


@pytest.fixture
def tree():
    """docs/a.txt (two versions), docs/logo.png, docs/gone.txt (deleted), notes.md."""
    with api.batch():
        a1 = api.put(
            "docs/a.txt", "first\n<script>x</script>\n", user="ann", attributes={"status": "draft"}, mtime=JAN
        )
        a2 = api.put(
            "docs/a.txt",
            "second\n<script>x</script>\n",
            user="bob",
            attributes={"status": "final"},
            mtime=JUN,
        )
        api.put("docs/logo.png", b"\x89PNG\x00\x00", user="ann", mtime=JAN)
        api.put("docs/gone.txt", "bye\n", user="ann", mtime=JAN)
        api.delete("docs/gone.txt", user="bob")
        api.put("notes.md", "# Notes\n", user="cy", mtime=JAN)
    return {"a1": a1, "a2": a2}


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("reader", password="pw")


@pytest.fixture
def reader(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def restorer(client, django_user_model):
    user = django_user_model.objects.create_user("restorer", password="pw")
    user.user_permissions.add(restore_permission())
    client.force_login(user)
    return client


def restore_permission():
    """The dedicated permission, as the migrations created it."""
    return Permission.objects.get(codename="restore_version", content_type__app_label="versioned_items")


def page_urls(tree):
    serial = tree["a2"].serial
    return {
        "home": reverse("versioned_items:home"),
        "browse": reverse("versioned_items:browse", args=["docs/"]),
        "item": reverse("versioned_items:item", args=["docs/a.txt"]),
        "diff": reverse("versioned_items:diff") + f"?old={tree['a1'].serial}&new={serial}",
        "content": reverse("versioned_items:content", args=[serial]),
        "restore": reverse("versioned_items:restore", args=[tree["a1"].serial]),
        "search": reverse("versioned_items:search") + "?q=second" if "search" in url_names() else None,
        # the writes (tests/site/test_site_writes.py)
        "upload": reverse("versioned_items:upload", args=["docs"]),
        "new_folder": reverse("versioned_items:new_folder", args=["docs"]),
        "new_version": reverse("versioned_items:new_version", args=["docs/a.txt"]),
        "edit": reverse("versioned_items:edit", args=["docs/a.txt"]),
        "delete": reverse("versioned_items:delete", args=["docs/a.txt"]),
        "move": reverse("versioned_items:move", args=["docs/a.txt"]),
        "copy": reverse("versioned_items:copy", args=["docs/a.txt"]),
        "bin": reverse("versioned_items:bin", args=["docs"]),
        "undelete": reverse("versioned_items:undelete", args=["docs/gone.txt"]),
        "purge": reverse("versioned_items:purge", args=["docs/gone.txt"]),
    }


def url_names():
    return {pattern.name for pattern in urls.urlpatterns}


def test_every_page_needs_a_login(client, tree):
    pages = {name: url for name, url in page_urls(tree).items() if url}
    assert url_names() <= set(pages), "a page without a login test"
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith("/accounts/login/?next="), name


def test_login_page_logs_in_and_comes_back(client, user, tree):
    url = reverse("versioned_items:browse", args=["docs/"])
    response = client.post(
        f"/accounts/login/?next={quote(url)}", {"username": "reader", "password": "pw", "next": url}
    )
    assert response.status_code == 302 and response["Location"] == url
    assert client.get(url).status_code == 200


# --- browse ----------------------------------------------------------------------------------


def test_browse_lists_folders_then_items(reader, tree):
    response = reader.get(reverse("versioned_items:browse"))
    assert response.status_code == 200
    assert [row["name"] for row in response.context["rows"]] == ["docs/", "notes.md"]
    docs = reader.get(reverse("versioned_items:browse", args=["docs/"]))
    assert [row["name"] for row in docs.context["rows"]] == ["a.txt", "logo.png"]
    assert b'href="/item/docs/a.txt"' in docs.content


def test_browse_pages_with_the_marker(reader):
    with api.batch():
        for i in range(60):
            api.put(f"many/f{i:02}.txt", "x")
    first = reader.get(reverse("versioned_items:browse", args=["many/"]), {"limit": 50})
    names = [row["name"] for row in first.context["rows"]]
    assert names == [f"f{i:02}.txt" for i in range(50)]
    assert first.context["next_url"]
    second = reader.get(reverse("versioned_items:browse", args=["many/"]) + first.context["next_url"])
    assert [row["name"] for row in second.context["rows"]] == [f"f{i:02}.txt" for i in range(50, 60)]
    assert second.context["next_url"] is None and second.context["first_url"]


def test_browse_as_of_a_date_and_with_a_filter(reader, tree):
    url = reverse("versioned_items:browse", args=["docs/"])
    then = reader.get(url, {"before": "2024-03-01"})
    rows = {row["name"]: row for row in then.context["rows"]}
    assert set(rows) == {"a.txt", "logo.png", "gone.txt"}  # gone.txt was still there
    assert rows["a.txt"]["version"].serial == tree["a1"].serial
    assert rows["a.txt"]["url"] == "/item/docs/a.txt?before=2024-03-01"
    drafts = reader.get(url, {"filter": "status=final"})
    assert [row["name"] for row in drafts.context["rows"]] == ["a.txt"]


def test_browse_flat_lists_every_item_below(reader, tree):
    response = reader.get(reverse("versioned_items:browse"), {"flat": "on"})
    assert [row["name"] for row in response.context["rows"]] == ["docs/a.txt", "docs/logo.png", "notes.md"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"before": "yesterday"}, "is not a date or time"),
        ({"before": "2999-01-01"}, "is in the future"),
        ({"before": "0001-01-01T00:00+14:00"}, "outside the years 1 to 9999"),
        ({"before": "9999-12-31T23:59-14:00"}, "outside the years 1 to 9999"),
        ({"filter": "status=="}, "unknown operator"),
        ({"filter": 'title="open'}, "unclosed double quote"),
        ({"limit": "7"}, "Select a valid choice"),
        ({"marker": "a\x01b"}, "control character"),
    ],
)
def test_browse_shows_bad_input_on_the_page_with_400(reader, tree, params, message):
    response = reader.get(reverse("versioned_items:browse", args=["docs/"]), params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'role="alert"' in response.content.decode()


def test_browse_bad_prefix_is_400_and_empty_store_is_empty(reader):
    assert reader.get(reverse("versioned_items:browse", args=["a//b/"])).status_code == 400
    response = reader.get(reverse("versioned_items:browse"))
    assert response.status_code == 200 and response.context["rows"] == []


def test_browse_query_count_does_not_grow_with_the_page(reader, tree, django_assert_num_queries):
    url = reverse("versioned_items:browse", args=["docs/"])
    reader.get(url)  # session and user loaded once per request: 2 queries
    # session, user, parent node, listing, versions of the listed objects; the user's level in
    # the folder for the write buttons: their and their groups' model permissions, their grants
    with django_assert_num_queries(8):
        reader.get(url)
    with api.batch():
        for i in range(30):
            api.put(f"docs/more{i}.txt", "x")
    with django_assert_num_queries(8):
        assert len(reader.get(url).context["rows"]) == 32


# --- item ------------------------------------------------------------------------------------


def test_item_shows_text_attributes_and_history(reader, tree):
    response = reader.get(reverse("versioned_items:item", args=["docs/a.txt"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "second\n&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert [(a.key, a.value) for a in response.context["attributes"]] == [("status", "final")]
    rows = response.context["history"]
    assert [(v.serial, p.serial if p else None) for v, p in rows] == [
        (tree["a2"].serial, tree["a1"].serial),
        (tree["a1"].serial, None),
    ]
    assert f"?old={tree['a1'].serial}&amp;new={tree['a2'].serial}" in html


def test_item_shows_a_version_by_serial_or_as_of_a_date(reader, tree):
    url = reverse("versioned_items:item", args=["docs/a.txt"])
    assert reader.get(url, {"version": tree["a1"].serial}).context["text"].text.startswith("first")
    assert reader.get(url, {"before": "2024-03-01"}).context["version"] == tree["a1"]
    before = reader.get(url, {"before": "2023-01-01"})
    assert before.context["version"] is None and "did not exist" in before.content.decode()


def test_item_binary_is_offered_for_download_and_deleted_is_explained(reader, tree):
    png = reader.get(reverse("versioned_items:item", args=["docs/logo.png"]))
    assert png.context["text"] is None and b"Binary content" in png.content
    gone = reader.get(reverse("versioned_items:item", args=["docs/gone.txt"]))
    assert gone.status_code == 200 and b"This item is deleted" in gone.content


def test_item_errors(reader, tree):
    item = reverse("versioned_items:item", args=["docs/a.txt"])
    assert reader.get(reverse("versioned_items:item", args=["docs/none.txt"])).status_code == 404
    assert reader.get(item, {"version": 999999}).status_code == 404
    assert reader.get(item, {"version": "x"}).status_code == 400
    assert reader.get(item, {"before": "31/12/2024"}).status_code == 400
    assert reader.get(reverse("versioned_items:item", args=["docs/./a.txt"])).status_code == 400
    # A folder has no item page: it is browsed.
    folder = reader.get(reverse("versioned_items:item", args=["docs"]))
    assert folder.status_code == 302 and folder["Location"] == "/browse/docs/"


def test_item_query_count(reader, tree, django_assert_num_queries):
    url = reverse("versioned_items:item", args=["docs/a.txt"])
    # session, user, node with current version, history, attributes, and the user's and
    # groups' permissions and grants on the path (may the user restore?), their level at the
    # path (the write buttons)
    with django_assert_num_queries(9):
        reader.get(url)


# --- diff, content ---------------------------------------------------------------------------


def test_diff_page(reader, tree):
    response = reader.get(
        reverse("versioned_items:diff"), {"old": tree["a1"].serial, "new": tree["a2"].serial}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="vi-diff-removed"' in html and ">first</td>" in html and ">second</td>" in html


@pytest.mark.parametrize(
    "params, status",
    [({"old": "1"}, 400), ({"old": "x", "new": "1"}, 400), ({"old": "999998", "new": "999999"}, 404)],
)
def test_diff_errors(reader, tree, params, status):
    assert reader.get(reverse("versioned_items:diff"), params).status_code == status


def test_content_is_a_download(reader, tree):
    response = reader.get(reverse("versioned_items:content", args=[tree["a2"].serial]))
    assert response["Content-Disposition"] == 'attachment; filename="a.txt"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"second")
    marker = api.lookup("docs/gone.txt", cluster=2)
    assert reader.get(reverse("versioned_items:content", args=[marker.serial])).status_code == 404


# --- restore ---------------------------------------------------------------------------------


def test_restore_asks_then_restores(restorer, tree):
    url = reverse("versioned_items:restore", args=[tree["a1"].serial])
    confirm = restorer.get(url)
    assert confirm.status_code == 200 and b"Yes, restore it" in confirm.content
    assert api.lookup("docs/a.txt") == tree["a2"]
    done = restorer.post(url)
    assert done.status_code == 302 and done["Location"] == "/item/docs/a.txt"
    current = api.lookup("docs/a.txt")
    assert current.source == tree["a1"].serial and current.muser == "restorer"
    assert api.get_attributes(current.serial) == {"status": "draft"}


def test_restore_needs_the_permission(reader, tree):
    url = reverse("versioned_items:restore", args=[tree["a1"].serial])
    assert reader.get(url).status_code == 403
    assert reader.post(url).status_code == 403
    assert api.lookup("docs/a.txt") == tree["a2"]
    item = reader.get(reverse("versioned_items:item", args=["docs/a.txt"]))
    assert url.encode() not in item.content


def test_staff_without_the_permission_cannot_restore_either(client, django_user_model, tree):
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    # change_version is write everywhere, not manage (purge_version would be manage, issue 12)
    staff.user_permissions.add(Permission.objects.get(codename="change_version"))
    client.force_login(staff)
    url = reverse("versioned_items:restore", args=[tree["a1"].serial])
    assert client.post(url).status_code == 403
    assert url.encode() not in client.get(reverse("versioned_items:item", args=["docs/a.txt"])).content
    assert api.lookup("docs/a.txt") == tree["a2"]


def test_the_restore_permission_shows_the_link(restorer, tree):
    url = reverse("versioned_items:restore", args=[tree["a1"].serial])
    assert url.encode() in restorer.get(reverse("versioned_items:item", args=["docs/a.txt"])).content


def test_restore_refuses_a_delete_marker_and_a_missing_version(restorer, tree):
    marker = api.lookup("docs/gone.txt", cluster=2)
    assert restorer.post(reverse("versioned_items:restore", args=[marker.serial])).status_code == 400
    assert restorer.post(reverse("versioned_items:restore", args=[999999])).status_code == 404


# --- search ----------------------------------------------------------------------------------


@pytest.fixture
def indexed_tree(tree, search_index):
    from versioned_items.search.indexing import wait_for_index

    wait_for_index()
    return tree


def search_page(client, **params):
    return client.get(reverse("versioned_items:search"), params)


def test_search_finds_highlights_and_counts_facets(reader, indexed_tree):
    response = search_page(reader, q="second")
    html = response.content.decode()
    assert response.status_code == 200
    assert [hit.path for hit in response.context["results"]] == ["docs/a.txt"]
    assert "<mark>second</mark>" in html and "<script>x" not in html
    facets = dict(response.context["facets"])
    assert [(link["value"], link["count"]) for link in facets["Modified by"]] == [("bob", 1)]


def test_search_history_and_as_of(reader, indexed_tree, tree):
    latest = search_page(reader, q="first")
    assert latest.context["results"].total == 0
    history = search_page(reader, q="first", history="on")
    assert [hit.serial for hit in history.context["results"]] == [tree["a1"].serial]
    assert f"/item/docs/a.txt?version={tree['a1'].serial}" in history.content.decode()
    then = search_page(reader, q="txt", before="2024-03-01")
    assert sorted(hit.path for hit in then.context["results"]) == ["docs/a.txt", "docs/gone.txt"]


def test_search_facet_links_and_subtree(reader, indexed_tree):
    everything = search_page(reader, q="*")
    assert everything.context["results"].total == 3
    ann = next(link for link in dict(everything.context["facets"])["Modified by"] if link["value"] == "ann")
    narrowed = reader.get(reverse("versioned_items:search") + ann["url"])
    assert [hit.path for hit in narrowed.context["results"]] == ["docs/logo.png"]
    below = search_page(reader, q="*", under="docs").context["results"]
    assert sorted(hit.path for hit in below) == ["docs/a.txt", "docs/logo.png"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"q": '"unclosed'}, "unclosed"),
        ({"q": "x", "before": "soon"}, "is not a date or time"),
        ({"q": "x", "under": "a//b"}, "empty"),
        ({"q": "x", "attr": "novalue"}, "is not &#x27;name=value&#x27;"),
    ],
)
def test_search_bad_input_is_a_400_with_a_message(reader, indexed_tree, params, message):
    response = search_page(reader, **params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_search_suggests_a_spelling_and_keeps_the_other_options(reader, indexed_tree):
    response = search_page(reader, q="secnod", under="docs", page="2")
    assert response.context["results"].suggestion == "second"
    assert 'Did you mean <a href="?under=docs&amp;q=second">second</a>?' in response.content.decode()
    assert "Did you mean" not in search_page(reader, q="second").content.decode()


def test_search_page_without_a_query_shows_the_form(reader, indexed_tree):
    response = reader.get(reverse("versioned_items:search"))
    assert response.status_code == 200 and "results" not in response.context


def test_numbers_too_large_for_the_database_are_not_found(reader, tree):
    huge = "9" * 30
    assert reader.get(f"/content/{huge}/").status_code == 404
    assert reader.get(f"/restore/{huge}/").status_code == 404
    assert reader.get(reverse("versioned_items:diff"), {"old": huge, "new": "1"}).status_code == 400
    assert (
        reader.get(reverse("versioned_items:item", args=["docs/a.txt"]), {"version": 2**63}).status_code
        == 400
    )
