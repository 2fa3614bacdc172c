"""The router: nodes and versions to their own connections, other models untouched."""

import pytest
from django.contrib.auth.models import User
from haystack import connection_router

from versioned_items.models import Node, Version
from versioned_items.search.routers import VersionedItemsRouter
from versioned_items.search.search_indexes import HistoryIndex, LatestIndex


@pytest.mark.parametrize(
    "hints, alias",
    [
        ({"index": LatestIndex()}, "vi_latest"),
        ({"index": HistoryIndex()}, "vi_history"),
        ({"instance": Node(path="a")}, "vi_latest"),
        ({"instance": Version()}, "vi_history"),
        ({"models": {Node}}, "vi_latest"),
        ({"models": {Version}}, "vi_history"),
        ({"models": {Node, Version}}, None),
        ({"models": set()}, None),
        ({"instance": User()}, None),
        ({}, None),
    ],
)
def test_routes(hints, alias):
    router = VersionedItemsRouter()
    assert router.for_write(**hints) == alias
    assert router.for_read(**hints) == alias


def test_other_models_fall_through_to_the_default_router():
    assert connection_router.for_write(instance=User()) == ["default"]
    assert connection_router.for_read(models={User}) == "default"
    # Haystack asks every router for writes; the first answer is the one indexes use.
    assert connection_router.for_write(index=LatestIndex())[0] == "vi_latest"


@pytest.mark.django_db
def test_indexes_ignore_other_connections(search_index, monkeypatch):
    from haystack import connections

    from versioned_items import api

    node = Node.objects.get(pk=api.put("a/b.txt", b"x").node_id)
    index = LatestIndex()
    updates = []
    monkeypatch.setattr(
        type(connections["default"].get_backend()), "update", lambda self, *a, **k: updates.append(a)
    )
    index.update_object(node, using="default")  # as a realtime signal processor would
    index.remove_object(node, using="default")
    assert updates == []
    assert index.index_queryset(using="default").count() == 0
    assert index.index_queryset(using="vi_latest").count() == 1


def test_connection_names_come_from_the_settings(settings):
    settings.VERSIONED_ITEMS = {"LATEST_CONNECTION": "mine", "HISTORY_CONNECTION": "theirs"}
    router = VersionedItemsRouter()
    assert router.for_write(index=LatestIndex()) == "mine"
    assert router.for_read(models={Version}) == "theirs"
