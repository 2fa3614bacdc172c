"""A content file deleted behind the app's back: the site and the admin say "content missing"
(the item page with 200, downloads and diffs with 404), never a 500."""

import pytest
from django.urls import reverse

from versioned_items import api
from versioned_items.blobs import content_name, storage
from versioned_items.exceptions import ContentMissing

pytestmark = pytest.mark.django_db

MESSAGE = "The content of this version is missing from the storage"


@pytest.fixture
def lost():
    """An item with two versions whose newest content file is gone."""
    old = api.put("docs/lost.txt", b"old words\n")
    version = api.put("docs/lost.txt", b"lost words\n")
    storage().delete(content_name(version.checksum))
    yield {"old": old, "version": version}
    api.put("docs/lost.txt", b"lost words\n")  # stores the file again for later tests
    storage().delete(content_name(old.checksum))


@pytest.fixture
def reader(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="pw"))
    return client


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    return client


def test_opening_missing_content_raises_the_apps_error(lost):
    with pytest.raises(ContentMissing, match=lost["version"].checksum):
        api.open_content(lost["version"])


def test_site_item_page_says_content_missing(reader, lost):
    response = reader.get(reverse("versioned_items:item", args=["docs/lost.txt"]))
    assert response.status_code == 200
    assert MESSAGE in response.content.decode()
    assert f"#{lost['old'].serial}" in response.content.decode()  # the history is still there


@pytest.mark.parametrize(
    ("user", "url"),
    [
        ("reader", lambda v: reverse("versioned_items:content", args=[v["version"].serial])),
        (
            "reader",
            lambda v: f"{reverse('versioned_items:diff')}?old={v['old'].serial}&new={v['version'].serial}",
        ),
        (
            "admin_client",
            lambda v: reverse("admin:versioned_items_version_content", args=[v["version"].serial]),
        ),
        (
            "admin_client",
            lambda v: (
                f"{reverse('admin:versioned_items_version_diff')}?old={v['old'].serial}&new={v['version'].serial}"
            ),
        ),
    ],
)
def test_downloads_and_diffs_are_404_with_a_message(request, lost, user, url):
    response = request.getfixturevalue(user).get(url(lost))
    assert response.status_code == 404 and MESSAGE in response.content.decode()


def test_admin_version_page_says_content_missing(admin_client, lost):
    response = admin_client.get(
        reverse("admin:versioned_items_version_change", args=[lost["version"].serial])
    )
    assert response.status_code == 200 and MESSAGE in response.content.decode()


def test_admin_node_page_still_shows(admin_client, lost):
    node = lost["version"].node
    response = admin_client.get(reverse("admin:versioned_items_node_change", args=[node.pk]))
    assert response.status_code == 200
