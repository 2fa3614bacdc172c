"""The search API: query text, filters, point-in-time, recycle bin, sorting, paging,
highlights, facets, results without database queries."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

from versioned_items import api
from versioned_items.exceptions import InvalidArgument, InvalidPath, InvalidQuery
from versioned_items.models import Cluster
from versioned_items.search import query
from versioned_items.search.api import search

from ..search_fixtures import found, indexed

pytestmark = pytest.mark.django_db


def timezone_of(hours: int) -> dt_timezone:
    return dt_timezone(timedelta(hours=hours))


@pytest.fixture(autouse=True)
def _index(search_index):
    return search_index


@pytest.fixture
def library():
    """A few items with attributes, types and users; returns {name: version}."""
    versions = {
        "guide": api.put(
            "docs/guide.md",
            b"# Install guide\n\nRun **pip install** first.",
            user="ann",
            content_type="text/markdown",
            attributes={"lang": "en", "level": "1"},
        ),
        "page": api.put(
            "docs/web/page.html",
            b"<h1>Budget</h1><p>Tom &amp; Jerry budget plan</p>",
            user="bob",
            content_type="text/html",
            attributes={"lang": "de"},
        ),
        "data": api.put(
            "data/numbers.json",
            b'{"title": "budget figures", "rows": [1, 2]}',
            user="ann",
            content_type="application/json",
        ),
        "image": api.put("pics/budget.png", b"\x89PNG binary", user="cid", content_type="image/png"),
        "notes": api.put(
            "docs/notes.txt",
            b"meeting notes about the budget " * 3,
            user="bob",
            domain="dc",
            attributes={"creator": "Eve"},
        ),
    }
    indexed()
    return versions


def test_words_match_content_path_name_and_attributes(library):
    assert found("install") == ["docs/guide.md"]
    assert set(found("budget")) == {
        "docs/web/page.html",
        "data/numbers.json",
        "pics/budget.png",
        "docs/notes.txt",
    }
    assert found("numbers") == ["data/numbers.json"]  # the path's words
    assert found("en") == ["docs/guide.md"]  # attribute values are searched too


def test_name_matches_rank_first(library):
    assert found("budget")[0] == "pics/budget.png"


def test_field_queries(library):
    assert found("muser:ann", sort="path") == ["data/numbers.json", "docs/guide.md"]
    assert found("content_type:text", sort="path") == [
        "docs/guide.md",
        "docs/notes.txt",
        "docs/web/page.html",
    ]
    assert found("content_type:text/html") == ["docs/web/page.html"]
    assert found("path_exact:docs/notes.txt") == ["docs/notes.txt"]
    assert found("name:guide") == ["docs/guide.md"]
    assert found("budget AND NOT muser:bob", sort="path") == ["data/numbers.json", "pics/budget.png"]


def test_attribute_queries(library):
    assert found("lang:en") == ["docs/guide.md"]
    assert found("lang:EN") == ["docs/guide.md"]  # case-insensitive
    assert found("dc.creator:eve") == ["docs/notes.txt"]
    assert found("lang:*", sort="path") == ["docs/guide.md", "docs/web/page.html"]
    assert found("lang:e*") == ["docs/guide.md"]


@pytest.mark.parametrize(
    "text",
    [
        "budget (plan",
        "budget plan)",
        '"budget plan',
        "budget AND",
        "OR budget",
        "muser:",
        "size:[1 TO",
        "size:[x TO 5]",
        "mtime:[bad TO 2020]",
        "lang:[a TO b]",
    ],
)
def test_malformed_query_raises_invalid_query(library, text):
    with pytest.raises(InvalidQuery) as error:
        search(text)
    assert repr(text) in str(error.value)


def test_filters(library):
    assert set(found("budget", under="docs")) == {"docs/web/page.html", "docs/notes.txt"}
    assert found(under="docs/web") == ["docs/web/page.html"]
    assert found(under="/docs/web") == ["docs/web/page.html"]
    assert set(found(content_type="text")) == {"docs/guide.md", "docs/web/page.html", "docs/notes.txt"}
    assert found(content_type="application/json") == ["data/numbers.json"]
    assert set(found(muser=["cid", "ann"])) == {"docs/guide.md", "data/numbers.json", "pics/budget.png"}
    assert found(size_range=(60, None)) == ["docs/notes.txt"]
    assert set(found(size_range=(None, 20))) == {"pics/budget.png"}
    assert found(attributes={"lang": "DE"}) == ["docs/web/page.html"]
    assert set(found(attributes={"lang": None})) == {"docs/guide.md", "docs/web/page.html"}
    assert found(attributes={"dc.creator": "eve"}) == ["docs/notes.txt"]
    later = timezone.now()
    guide_time = library["guide"].mtime
    assert found(mtime_range=(None, library["page"].mtime)) == ["docs/guide.md"]
    assert len(found(mtime_range=(guide_time, later))) == 5


def test_filters_do_not_change_relevance_order(library):
    plain = found("budget")
    filtered = [p for p in found("budget", under="docs")]
    assert filtered == [p for p in plain if p.startswith("docs/")]


def test_sorting_and_paging(library):
    paths = found(sort="path", page_size=100)
    assert paths == sorted(paths)
    assert found(sort="-path", page_size=100) == paths[::-1]
    assert found(sort="-mtime", page_size=1) == ["docs/notes.txt"]
    assert found(sort="size", page_size=1) == ["pics/budget.png"]
    first = search(sort="path", page_size=2)
    third = search(sort="path", page=3, page_size=2)
    assert (first.total, first.num_pages, first.has_next) == (5, 3, True)
    assert [h.path for h in third] == paths[4:]
    assert not third.has_next
    assert list(search(sort="path", page=9, page_size=2)) == []


def test_highlights_escape_everything_but_the_marks(library):
    hit = search("budget", under="docs/web").hits[0]
    snippet = hit.highlights["text"]
    assert "<mark>Budget</mark>" in snippet
    assert "Tom &amp; Jerry" in snippet
    assert "<h1>" not in snippet
    api.put("docs/evil.txt", b"<script>alert(1)</script> budget")
    indexed()
    evil = search("budget", under="docs", sort="-mtime").hits[0]
    assert "&lt;/script&gt;" in evil.highlights["text"]
    assert "</script>" not in evil.highlights["text"]


def test_facets(library, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "FACET_ATTRIBUTES": ["lang", "dc.creator"]}
    page = search(facets=True)
    assert page.facets["muser"] == [("ann", 2), ("bob", 2), ("cid", 1)]
    assert page.facets["content_type"][0] == ("application/json", 1)
    assert page.facets["cluster"] == [(0, 5)]
    assert page.facets["attributes"] == {"lang": [("de", 1), ("en", 1)], "dc.creator": [("eve", 1)]}
    assert search("budget", facets=True).facets["muser"] == [("bob", 2), ("ann", 1), ("cid", 1)]


def test_results_come_from_the_index_without_queries(library, django_assert_num_queries):
    with django_assert_num_queries(0):
        page = search("install")
        hit = page.hits[0]
    assert hit.path == "docs/guide.md"
    assert hit.serial == library["guide"].serial
    assert hit.node_id == library["guide"].node_id
    assert hit.fields["muser"] == "ann"
    assert hit.fields["attributes"] == {"lang": "en", "level": "1"}
    assert hit.fields["mtime"] == library["guide"].mtime
    assert hit.fields["valid_until"] is None
    with django_assert_num_queries(1):
        assert hit.version.node.path == "docs/guide.md"
    page = search("budget")
    with django_assert_num_queries(1):
        page.load_versions()
        assert all(h.version.serial == h.serial for h in page)


# --- spelling suggestions --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, suggestion",
    [
        ("budgte", "budget"),  # a stem of the content
        ("Meetnig notes", "Meeting notes"),  # the word as the documents write it, in the typed case
        ("pip AND instll AND gide", "pip AND install AND guide"),
        ("numbrs", "numbers"),  # a word of the paths
        ("path:nmbers", "path:numbers"),
        ("budget", None),  # nothing to correct
        ("zzyzx", None),  # nothing close enough
        ("NOT budgte", None),  # not a word the user looks for
    ],
)
def test_spelling_suggestions_come_from_the_index(library, text, suggestion):
    assert search(text).suggestion == suggestion


def test_suggestions_only_when_few_documents_match_unless_asked(library, monkeypatch):
    monkeypatch.setattr(query, "FEW_HITS", 4)
    assert search("budget OR budgte").total == 4
    assert search("budget OR budgte").suggestion is None  # enough hits: not even computed
    assert search("budget OR budgte", suggest=True).suggestion == "budget OR budget"
    assert search("budgte", suggest=False).suggestion is None


def test_suggestions_skip_words_only_deleted_documents_had(library):
    api.put("docs/notes.txt", b"quarterly forecast", user="bob")  # "meeting" leaves the latest index
    indexed()
    assert search("meetnig").suggestion is None
    assert search("meetnig", history=True).suggestion == "meeting"
    assert search("forcast").suggestion == "forecast"


def test_suggestions_cost_no_query(library, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert search("budgte").suggestion == "budget"


def test_history_holds_every_version(library):
    api.put("docs/guide.md", b"Uninstall guide", user="ann")
    indexed()
    assert found("install") == []
    assert found("install", history=True) == ["docs/guide.md"]
    hits = search("guide", history=True, sort="mtime").hits
    assert [h.fields["cluster"] for h in hits] == [Cluster.HISTORY, Cluster.NORMAL]
    assert hits[0].fields["valid_until"] == hits[1].fields["mtime"]


def test_point_in_time(library):
    before_edit = timezone.now()
    api.put("docs/guide.md", b"Rewritten from scratch")
    api.delete("docs/notes.txt")
    after = timezone.now()
    indexed()
    assert found("install", as_of=before_edit) == ["docs/guide.md"]
    assert found("rewritten", as_of=before_edit) == []
    assert found("rewritten", as_of=after) == ["docs/guide.md"]
    assert found("meeting", as_of=before_edit) == ["docs/notes.txt"]
    assert found("meeting", as_of=after) == []  # deleted by then
    assert found("meeting", as_of=after, include_deleted=True) == ["docs/notes.txt"]
    # Before anything was written, nothing matched.
    assert found(as_of=library["guide"].mtime) == []
    # The same versions as the storage API's lookup.
    for path in ("docs/guide.md", "docs/notes.txt", "docs/web/page.html"):
        version = api.lookup(path, before=before_edit)
        assert [
            h.serial for h in search(as_of=before_edit, under="docs", page_size=100) if h.path == path
        ] == [version.serial]


def test_point_in_time_at_the_ends_of_the_validity_interval(library):
    """At the very moment of an edit the old version is valid, the new one not yet: as
    api.lookup(before=T) answers, with the same totals."""
    edited = api.put("docs/guide.md", b"Rewritten from scratch")
    indexed()
    moment = edited.mtime
    assert api.lookup("docs/guide.md", before=moment).serial == library["guide"].serial
    page = search("guide", as_of=moment, page_size=100)
    assert [h.serial for h in page if h.path == "docs/guide.md"] == [library["guide"].serial]
    assert page.total == len(page.hits)
    assert found("rewritten", as_of=moment) == []
    assert found("rewritten", as_of=moment + timedelta(microseconds=1)) == ["docs/guide.md"]
    assert found("install", as_of=moment + timedelta(microseconds=1)) == []


def test_recycle_bin(library):
    api.delete("docs/notes.txt")
    indexed()
    assert found("meeting", history=True) == ["docs/notes.txt"]  # the HISTORY version
    bin_hits = search("meeting", cluster=Cluster.DELETED).hits
    assert [h.fields["cluster"] for h in bin_hits] == [Cluster.DELETED]
    assert found("meeting") == []


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"sort": "name"}, InvalidArgument),
        ({"page": 0}, InvalidArgument),
        ({"page_size": 5000}, InvalidArgument),
        ({"as_of": timezone.now().replace(tzinfo=None)}, InvalidArgument),
        ({"as_of": timezone.now() + timedelta(days=1)}, InvalidArgument),
        ({"cluster": 7}, InvalidArgument),
        ({"under": "a/../b"}, InvalidPath),
        ({"size_range": (5, 1)}, InvalidArgument),
        ({"size_range": 5}, InvalidArgument),
        ({"mtime_range": (timezone.now().replace(tzinfo=None), None)}, InvalidArgument),
    ],
)
def test_bad_arguments_name_the_value(kwargs, error):
    with pytest.raises(error):
        search("x", **kwargs)


def test_hit_of_a_version_removed_since_is_none(library):
    page = search("install")
    api.remove_version(library["guide"].serial)
    assert page.hits[0].version is None
    assert page.hits[0].node is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mtime_range": (datetime(1, 1, 1, tzinfo=timezone_of(14)), None)},
        {"as_of": datetime(1, 1, 1, tzinfo=timezone_of(14))},
    ],
)
def test_times_out_of_range_in_utc_are_refused(kwargs):
    with pytest.raises(InvalidArgument, match="out of range"):
        search("x", **kwargs)


def test_history_with_a_union_filter_leaves_out_delete_markers():
    # Whoosh's AndNot kept excluded documents when its left side And-ed a union such as this
    # Or of users: the delete markers showed in a history search.
    for path in ("b", "a/a/a"):
        api.put(path, b"first", user="ann")
        api.put(path, b"second", user="bob")
        api.delete(path, user="ann")
    indexed()
    page = search("*", history=True, muser=["ann", "bob"])
    assert {hit.fields["cluster"] for hit in page} == {Cluster.HISTORY}
    assert page.total == 4
