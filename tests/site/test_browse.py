"""The browse page: folder rows with their statistics, sorting, previous/next and the count."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from versioned_items import api

pytestmark = pytest.mark.django_db

JAN, JUN = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_default_access(settings):
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "DEFAULT_ACCESS": ""}


@pytest.fixture
def tree():
    with api.batch():
        api.put("team/alpha/a.txt", b"12345", user="ann", mtime=JAN)
        api.put("team/alpha/deep/b.txt", b"123", user="ann", mtime=JUN)
        api.put("team/beta/c.txt", b"1234567890", user="bob", mtime=JUN)
        api.put("team/small.txt", b"1", user="bob", mtime=JAN)
        api.put("team/big.txt", b"1" * 100, user="bob", mtime=JUN)


def browse(client, prefix="", **params):
    url = reverse("versioned_items:browse", args=[prefix]) if prefix else reverse("versioned_items:browse")
    return client.get(url, params)


def login(client, django_user_model, *grants_on):
    user = django_user_model.objects.create_user("someone")
    for path in grants_on:
        api.grant(path, user=user)
    client.force_login(user)
    return user


def test_folder_rows_show_their_statistics(client, django_user_model, tree):
    login(client, django_user_model, "team")
    rows = {row["name"]: row for row in browse(client, "team/").context["rows"]}
    # items directly in the folder, the size and last change of everything below
    assert (rows["alpha/"]["children"], rows["alpha/"]["size"]) == (1, 8)
    assert (rows["beta/"]["children"], rows["beta/"]["size"]) == (1, 10)
    # the last change below (when it was written), not a version's own mtime
    assert rows["alpha/"]["mtime"] < rows["beta/"]["mtime"]
    content = browse(client, "team/").content.decode()
    assert "folder, 1 item" in content and "8\xa0bytes" in content


def test_a_folder_shown_for_what_lies_deeper_keeps_its_totals(client, django_user_model, tree):
    login(client, django_user_model, "team/alpha")
    (row,) = browse(client).context["rows"]
    assert row["name"] == "team/" and "size" not in row and "children" not in row
    assert b"18\xc2\xa0bytes" not in browse(client).content  # team's total, beta included
    (alpha,) = [r for r in browse(client, "team/").context["rows"] if r["kind"] == "folder"]
    assert alpha["size"] == 8  # alpha is readable whole


def test_as_of_a_time_folders_show_no_statistics(client, django_user_model, tree):
    login(client, django_user_model, "team")
    rows = browse(client, "team/", before="2024-03-01").context["rows"]
    assert all("size" not in row for row in rows if row["kind"] == "folder")


@pytest.mark.parametrize(
    "sort, folders, items",
    [
        ("name", ["alpha/", "beta/"], ["big.txt", "small.txt"]),
        ("-name", ["beta/", "alpha/"], ["small.txt", "big.txt"]),
        ("size", ["alpha/", "beta/"], ["small.txt", "big.txt"]),
        ("-size", ["beta/", "alpha/"], ["big.txt", "small.txt"]),
        ("mtime", ["alpha/", "beta/"], ["small.txt", "big.txt"]),  # beta changed last
        ("-mtime", ["beta/", "alpha/"], ["big.txt", "small.txt"]),
    ],
)
def test_sorting_orders_the_page_folders_first(client, django_user_model, tree, sort, folders, items):
    login(client, django_user_model, "team")
    response = browse(client, "team/", sort=sort)
    rows = response.context["rows"]
    assert [r["name"] for r in rows if r["kind"] == "folder"] == folders
    assert [r["name"] for r in rows if r["kind"] == "item"] == items
    assert (b"sorted within this page" in response.content) == (sort.lstrip("-") != "name")


def test_a_bad_sort_is_a_400(client, django_user_model, tree):
    login(client, django_user_model, "team")
    assert browse(client, "team/", sort="owner").status_code == 400


def test_previous_and_next_pages_and_the_count(client, django_user_model):
    with api.batch():
        for i in range(120):
            api.put(f"many/{i:03d}.txt", b"x")
    login(client, django_user_model, "many")
    first = browse(client, "many/", limit="50")
    assert first.context["counts"] == {"folders": 0, "items": 50}
    assert b"0 folders, 50 items on this page" in first.content
    assert first.context["previous_url"] is None
    second = client.get(reverse("versioned_items:browse", args=["many/"]) + first.context["next_url"])
    assert second.context["rows"][0]["name"] == "050.txt"
    third = client.get(reverse("versioned_items:browse", args=["many/"]) + second.context["next_url"])
    assert [r["name"] for r in third.context["rows"]][:1] == ["100.txt"] and len(third.context["rows"]) == 20
    back = client.get(reverse("versioned_items:browse", args=["many/"]) + third.context["previous_url"])
    assert back.context["rows"][0]["name"] == "050.txt"
    again = client.get(reverse("versioned_items:browse", args=["many/"]) + back.context["previous_url"])
    assert again.context["rows"][0]["name"] == "000.txt" and again.context["previous_url"] is None


def test_a_bad_trail_is_a_400_naming_it(client, django_user_model, tree):
    login(client, django_user_model, "team")
    response = browse(client, "team/", trail="a\x00b")
    assert response.status_code == 400 and b"trail" in response.content


def test_the_statistics_cost_one_query_whatever_the_number_of_folders(
    client, django_user_model, django_assert_num_queries
):
    with api.batch():
        for i in range(3):
            api.put(f"f/{i}/x.txt", b"x")
    user = login(client, django_user_model, "f")
    url = reverse("versioned_items:browse", args=["f/"])
    client.get(url)
    # session, user, parent, permissions (2), grants (listing), listing, grants (statistics),
    # statistics, the level for the write buttons
    with django_assert_num_queries(10) as few:
        client.get(url)
    with api.batch():
        for i in range(3, 40):
            api.put(f"f/{i}/x.txt", b"x")
    with django_assert_num_queries(len(few.captured_queries)):
        rows = client.get(url).context["rows"]
    assert len(rows) == 40 and all(row["children"] == 1 for row in rows)
    assert user.is_authenticated
