"""The search app's pages reach the site and the admin through versioned_items.extensions, and
without the search app (VI_TEST_SEARCH=0) they are simply absent."""

import pytest
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from versioned_items import api, extensions

from ..conftest import SEARCH

pytestmark = pytest.mark.django_db


def test_the_site_header_links_to_search_only_with_the_search_app(admin_client):
    api.put("docs/a.txt", b"alpha")
    page = admin_client.get(reverse("versioned_items:browse")).content.decode()
    assert ('href="/search/"' in page) is SEARCH
    if SEARCH:
        assert reverse("versioned_items:search") == "/search/"
    else:
        with pytest.raises(NoReverseMatch):
            reverse("versioned_items:search")


def test_the_node_admin_has_the_search_pages_only_with_the_search_app(admin_client):
    api.put("docs/a.txt", b"alpha")
    listing = admin_client.get(reverse("admin:versioned_items_node_changelist")).content.decode()
    node = api.get_node("docs")
    page = admin_client.get(reverse("admin:versioned_items_node_change", args=[node.pk])).content.decode()
    assert ("Search indexes" in listing) is SEARCH
    assert ("Search here" in page) is SEARCH
    if SEARCH:
        assert 'action="/admin/versioned_items/node/search/"' in listing  # the search bar
        assert "/admin/versioned_items/node/search/?q=&amp;under=docs" in page
    else:
        with pytest.raises(NoReverseMatch):
            reverse("admin:versioned_items_node_search")


def test_links_are_resolved_per_request_and_hidden_when_not_routed(django_user_model):
    request = RequestFactory().get("/")
    request.user = django_user_model(username="someone")
    hidden = extensions.Link("Never", "admin:index", visible=lambda request: False)
    unrouted = extensions.Link("Nowhere", "versioned_items:no-such-page")
    shown = extensions.Link("Admin", "admin:index", query=lambda node: {"under": node})
    assert hidden.resolve(request) is None and unrouted.resolve(request) is None
    assert shown.resolve(request, "docs/a b") == {"label": "Admin", "url": "/admin/?under=docs%2Fa+b"}
