"""The site honours grants: anonymous, no grants, reader, writer and manager."""

import pytest
from django.urls import reverse

from versioned_items import api

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_default_access(settings):
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "DEFAULT_ACCESS": ""}


@pytest.fixture
def tree():
    with api.batch():
        old = api.put("team/a.txt", "one\n")
        new = api.put("team/a.txt", "two\n")
        secret = api.put("secret/s.txt", "hidden\n")
    return {"old": old.serial, "new": new.serial, "secret": secret.serial}


def login_as(client, django_user_model, level):
    user = django_user_model.objects.create_user(f"user-{level or 'none'}")
    if level:
        api.grant("team", user=user, level=level)
    client.force_login(user)
    return client


def urls(tree, serial_old="old", serial_new="new"):
    return {
        "browse": reverse("versioned_items:browse", args=["team/"]),
        "item": reverse("versioned_items:item", args=["team/a.txt"]),
        "diff": reverse("versioned_items:diff") + f"?old={tree[serial_old]}&new={tree[serial_new]}",
        "content": reverse("versioned_items:content", args=[tree[serial_new]]),
        "restore": reverse("versioned_items:restore", args=[tree[serial_old]]),
    }


def test_anonymous_is_sent_to_the_login_page(client, tree):
    for name, url in urls(tree).items():
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], name


def test_without_grants_nothing_exists(client, django_user_model, tree):
    login_as(client, django_user_model, "")
    root = client.get(reverse("versioned_items:browse"))
    assert root.status_code == 200 and root.context["rows"] == []
    for name in ("item", "diff", "content", "restore"):
        assert client.get(urls(tree)[name]).status_code == 404, name
    assert client.post(urls(tree)["restore"]).status_code == 404
    assert api.lookup("team/a.txt").serial == tree["new"]


@pytest.mark.parametrize("level", ["read", "write"])
def test_reader_and_writer_read_their_folder_only_and_may_not_restore(client, django_user_model, tree, level):
    login_as(client, django_user_model, level)
    root = client.get(reverse("versioned_items:browse"))
    assert [row["name"] for row in root.context["rows"]] == ["team/"]
    for name in ("browse", "item", "diff", "content"):
        assert client.get(urls(tree)[name]).status_code == 200, name
    assert client.get(urls(tree)["restore"]).status_code == 403
    assert client.post(urls(tree)["restore"]).status_code == 403
    assert urls(tree)["restore"].encode() not in client.get(urls(tree)["item"]).content
    hidden = reverse("versioned_items:item", args=["secret/s.txt"])
    assert client.get(hidden).status_code == 404
    assert client.get(reverse("versioned_items:content", args=[tree["secret"]])).status_code == 404
    assert client.get(urls(tree, serial_old="secret")["diff"]).status_code == 404
    assert client.get(reverse("versioned_items:browse", args=["secret/"])).context["rows"] == []


def test_manager_restores_in_their_folder(client, django_user_model, tree):
    login_as(client, django_user_model, "manage")
    assert urls(tree)["restore"].encode() in client.get(urls(tree)["item"]).content
    assert client.post(urls(tree)["restore"]).status_code == 302
    assert api.lookup("team/a.txt").source == tree["old"]
    assert client.get(reverse("versioned_items:restore", args=[tree["secret"]])).status_code == 404


def test_a_reader_browse_page_has_a_constant_number_of_queries(
    client, django_user_model, tree, django_assert_num_queries
):
    login_as(client, django_user_model, "read")
    url = reverse("versioned_items:browse", args=["team/"])
    # session, user, parent node, the user's and groups' model permissions, the grants' paths,
    # the page, the versions of the page, the user's level in the folder (for the write buttons)
    with django_assert_num_queries(9):
        assert [row["name"] for row in client.get(url).context["rows"]] == ["a.txt"]
