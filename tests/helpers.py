"""Domain helpers that keep the tests short."""

from django.db import connection

from versioned_items import api
from versioned_items.models import Attribute, Blob, Node, Statistics, Version


def assert_listing(result, objects=(), prefixes=(), next_marker=None):
    """A listing page holds exactly these object paths and prefixes, and this next marker."""
    assert [e.path for e in result.objects] == list(objects)
    assert result.prefixes == list(prefixes)
    assert result.next_marker == next_marker


def all_pages(**kwargs):
    """Every entry of a listing, walking the pages with the marker: (objects, prefixes, pages)."""
    objects, prefixes, pages, marker = [], [], 0, None
    while True:
        page = api.list_latest(marker=marker, **kwargs)
        pages += 1
        objects += [e.path for e in page.objects]
        prefixes += page.prefixes
        if page.next_marker is None:
            return objects, prefixes, pages
        marker = page.next_marker


def assert_statistics_exact():
    """Stored statistics equal a recomputation from the versions."""
    differences = api.recompute_statistics()
    assert differences == [], "\n".join(map(str, differences))


def snapshot():
    """Everything the store holds, to compare before and after a rejected call."""
    return (
        list(Node.objects.order_by("pk").values_list()),
        list(Version.objects.order_by("pk").values_list()),
        list(Attribute.objects.order_by("pk").values_list()),
        list(Statistics.objects.order_by("pk").values_list()),
        list(Blob.objects.order_by("pk").values_list()),
    )


def statements(captured):
    """The SQL statements of a CaptureQueriesContext, without transaction control."""
    skip = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")
    return [q["sql"] for q in captured if not q["sql"].upper().startswith(skip)]


def vendor():
    return connection.vendor
