"""S3-style listing: prefix, delimiter, marker, limit, as-of, filters, and its query count."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from versioned_items import api
from versioned_items.exceptions import InvalidArgument, InvalidFilter, InvalidPath, NodeNotFound
from versioned_items.models import Cluster

from ..helpers import all_pages, assert_listing, statements

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree():
    for path in (
        "docs/a.txt",
        "docs/b/one.txt",
        "docs/b/two.txt",
        "docs/c/deep/x.txt",
        "docs/gone.txt",
        "other.txt",
    ):
        api.put(path, b"x" * len(path))
    api.delete("docs/gone.txt")


def test_flat_listing_of_a_subtree(tree):
    assert_listing(
        api.list_latest("docs"),
        objects=["docs/a.txt", "docs/b/one.txt", "docs/b/two.txt", "docs/c/deep/x.txt"],
    )


def test_delimiter_gives_common_prefixes_once(tree):
    assert_listing(
        api.list_latest("docs", delimiter="/"), objects=["docs/a.txt"], prefixes=["docs/b/", "docs/c/"]
    )
    assert_listing(api.list_latest(delimiter="/"), objects=["other.txt"], prefixes=["docs/"])
    assert_listing(
        api.list_latest(prefix="docs/b/", delimiter="/"), objects=["docs/b/one.txt", "docs/b/two.txt"]
    )


def test_prefix_inside_a_level(tree):
    assert_listing(api.list_latest("docs", prefix="b/t"), objects=["docs/b/two.txt"])
    assert_listing(
        api.list_latest(prefix="docs/", delimiter="/", paths_filter=["docs/c*"]), prefixes=["docs/c/"]
    )


def test_a_node_can_be_object_and_prefix():
    api.put("n", b"1")
    api.put("n/child", b"2")
    api.put("n-sibling", b"3")
    assert_listing(api.list_latest(delimiter="/"), objects=["n", "n-sibling"], prefixes=["n/"])


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_paging_with_the_marker_returns_everything_once(limit):
    for i in range(4):
        api.put(f"p/f{i}", b"1")
        api.put(f"p/d{i}/x", b"1")
    api.put("p/d1", b"object and prefix")
    objects, prefixes, pages = all_pages(parent="p", delimiter="/", limit=limit)
    assert objects == ["p/d1", "p/f0", "p/f1", "p/f2", "p/f3"]
    assert prefixes == ["p/d0/", "p/d1/", "p/d2/", "p/d3/"]
    assert pages == -(-9 // limit)
    flat, _, _ = all_pages(parent="p", limit=limit)
    assert flat == sorted(flat) and len(flat) == 9


def test_limit_counts_objects_and_prefixes_together(tree):
    page = api.list_latest("docs", delimiter="/", limit=2)
    assert_listing(page, objects=["docs/a.txt"], prefixes=["docs/b/"], next_marker="docs/b/")
    page = api.list_latest("docs", delimiter="/", limit=2, marker=page.next_marker)
    assert_listing(page, prefixes=["docs/c/"])
    assert_listing(api.list_latest("docs", limit=0))


def test_marker_inside_a_common_prefix_skips_it(tree):
    assert_listing(api.list_latest("docs", delimiter="/", marker="docs/b/one.txt"), prefixes=["docs/c/"])


def test_as_of_lists_the_past(tree):
    moment = api.lookup("docs/a.txt").mtime + dt.timedelta(microseconds=1)
    assert_listing(api.list_latest("docs", before=moment), objects=["docs/a.txt"])
    v = api.put("docs/a.txt", b"changed")
    past = api.list_latest("docs", before=moment, properties=True)
    assert past.objects[0].serial != v.serial and past.objects[0].version.cluster == Cluster.HISTORY


def test_deleted_items_are_hidden_unless_asked(tree):
    page = api.list_latest("docs", except_cluster=None)
    assert "docs/gone.txt" in [e.path for e in page.objects]
    page = api.list_latest("docs", except_cluster=Cluster.HISTORY, delimiter="/")
    assert page.prefixes == ["docs/b/", "docs/c/"]


def test_size_range_and_properties(tree):
    page = api.list_latest("docs", size_range=(14, 14), properties=True)
    assert [(e.path, e.version.size) for e in page.objects] == [
        ("docs/b/one.txt", 14),
        ("docs/b/two.txt", 14),
    ]
    assert_listing(api.list_latest("docs", size_range=(None, 10)), objects=["docs/a.txt"])


def test_attribute_filters():
    api.put("f/a", b"1", attributes={"n": "9", "colour": "red"})
    api.put("f/b", b"1", attributes={"n": "10", "colour": "blue"})
    api.put("f/c", b"1", attributes={"n": "x"})
    api.put("f/d", b"1")

    def paths_for(expression):
        return [e.path for e in api.list_latest("f", filter=expression).objects]

    assert paths_for("n") == ["f/a", "f/b", "f/c"]
    assert paths_for("!n") == ["f/d"]
    assert paths_for("n<10") == ["f/a"]  # numeric, not '10' < '9'
    assert paths_for("n>=9.5") == ["f/b"]
    assert paths_for("n=10.0") == ["f/b"]
    assert paths_for("n!=9") == ["f/b"]
    assert paths_for("colour>blue") == ["f/a"]  # strings compare as strings
    assert paths_for("colour=red, n<100") == ["f/a"]
    assert paths_for("n=x") == ["f/c"]
    assert [e.path for e in api.list_latest("f", filter="colour", delimiter="/").objects] == ["f/a", "f/b"]


def test_other_delimiters_follow_s3():
    for path in ("g/a-1", "g/a-2", "g/b", "g/c-", "g/c-x"):
        api.put(path, b"1")
    # As in S3, "c-" holds the delimiter (at its end): it is rolled into the prefix "c-".
    assert_listing(api.list_latest("g", delimiter="-"), objects=["g/b"], prefixes=["g/a-", "g/c-"])
    page = api.list_latest("g", delimiter="-", limit=1)
    assert_listing(page, prefixes=["g/a-"], next_marker="g/a-")
    assert_listing(api.list_latest("g", prefix="c-", delimiter="-"), objects=["g/c-", "g/c-x"])


def test_pages_of_other_delimiters_lose_nothing_where_an_item_ends_with_the_delimiter():
    # An item "a-" beside "a-/a": before, the object "a-" and the prefix "a-" shared the key
    # "a-", and the page after a marker "a-" lost the prefix.
    for path in ("a-", "a-/a", "b"):
        api.put(path, b"1")
    seen, marker = [], None
    while True:
        page = api.list_latest(delimiter="-", limit=1, marker=marker)
        seen += [e.path for e in page.objects] + page.prefixes
        if page.next_marker is None:
            break
        marker = page.next_marker
    assert seen == ["a-", "b"]
    assert_listing(api.list_latest(delimiter="-"), objects=["b"], prefixes=["a-"])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"parent": "missing"}, NodeNotFound, "missing"),
        ({"prefix": "a//"}, InvalidPath, "segment"),
        ({"limit": -1}, InvalidArgument, "limit -1"),
        ({"limit": 10**6}, InvalidArgument, "limit"),
        ({"limit": "10"}, InvalidArgument, "limit"),
        ({"size_range": (5, 1)}, InvalidArgument, "greater"),
        ({"size_range": 5}, InvalidArgument, "pair"),
        ({"filter": "k=1,,"}, InvalidFilter, "empty term"),
        ({"except_cluster": 9}, InvalidArgument, "except_cluster 9"),
        ({"marker": "a\x00"}, InvalidArgument, "marker"),
        ({"delimiter": "\n"}, InvalidArgument, "delimiter"),
        ({"paths_filter": "docs"}, InvalidArgument, "list"),
    ],
)
def test_bad_arguments(tree, kwargs, error, message):
    with pytest.raises(error, match=message):
        api.list_latest(**kwargs)


def _page_statements(**kwargs):
    with CaptureQueriesContext(connection) as captured:
        api.list_latest(**kwargs)
    return statements(captured.captured_queries)


@pytest.mark.parametrize("before", [False, True])
def test_a_page_costs_the_same_queries_however_many_prefixes(before):
    moment = None
    for n in (3, 60):
        for i in range(n):
            api.put(f"size{n}/dir{i:03}/file", b"1")
        if before:
            moment = api.lookup(f"size{n}/dir000/file").mtime + dt.timedelta(seconds=1)
            moment = min(moment, dt.datetime.now(dt.UTC))
        sql = _page_statements(parent=f"size{n}", delimiter="/", limit=1000, before=moment, filter="!k")
        # one to find the parent, one for the page
        assert len(sql) == 2, sql
    assert len(_page_statements(parent="size60", delimiter="/", properties=True)) == 2
    api.put("size60/f", b"1")
    assert len(_page_statements(parent="size60", delimiter="/", properties=True)) == 3
