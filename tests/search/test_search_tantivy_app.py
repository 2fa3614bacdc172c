"""The app's search API (``search/api.py``) on the tantivy engine (``search/tantivy_search.py``):
query syntax, filters, as-of, the recycle bin, sorting and paging, highlights, facets, bounds,
suggestions and grants, each compared with the Whoosh engine on the same data.

Both engines index the same database: the outbox is applied to the tantivy indexes, and the
Whoosh indexes are rebuilt from the database (see :class:`Engines`).

Skipped as a whole where tantivy is not installed (it is an optional extra).
"""

import runpy
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("tantivy")

from django.contrib.auth.models import AnonymousUser  # noqa: E402
from django.utils import timezone  # noqa: E402

from versioned_items import api  # noqa: E402
from versioned_items.exceptions import InvalidQuery  # noqa: E402
from versioned_items.models import Cluster  # noqa: E402
from versioned_items.search import indexing  # noqa: E402
from versioned_items.search import query as q  # noqa: E402
from versioned_items.search.api import SORTS, search  # noqa: E402
from versioned_items.search.tantivy_search import run_tantivy  # noqa: E402

from ..search_fixtures import ALIASES  # noqa: E402

pytestmark = pytest.mark.django_db

EXAMPLE_SETTINGS = Path(__file__).resolve().parents[2] / "example_project" / "settings.py"
ENGINES = ("whoosh", "tantivy")


class Engines:
    """The app's two connections on either engine, each engine in folders of its own;
    ``use_engine`` is the fixture of tests/search/conftest.py."""

    def __init__(self, folder, use_engine):
        self.folder = folder
        self._use = use_engine

    def use(self, engine: str) -> None:
        self._use(engine, self.folder / engine)

    def index(self) -> None:
        """Apply the pending writes to the tantivy indexes; rebuild the Whoosh ones from the
        database (the outbox is applied once, to one engine)."""
        self.use("tantivy")
        indexing.wait_for_index()
        self.use("whoosh")
        indexing.rebuild()
        self.use("tantivy")

    def both(self, text="", **kwargs):
        """``(Whoosh's page, tantivy's page)`` of ``search(text, **kwargs)``."""
        self.use("whoosh")
        try:
            whoosh = search(text, **kwargs)
        finally:
            self.use("tantivy")
        return whoosh, search(text, **kwargs)

    def same(self, text="", **kwargs):
        """tantivy's page of ``search(text, **kwargs)``, asserting that Whoosh finds the same
        paths (in the same order when sorted) and the same total."""
        whoosh, tantivy = self.both(text, **kwargs)
        if kwargs.get("sort", "relevance") == "relevance":  # the engines score differently
            assert sorted(paths(tantivy)) == sorted(paths(whoosh)), text
        else:
            assert paths(tantivy) == paths(whoosh), text
        assert tantivy.total == whoosh.total, text
        return tantivy


def paths(page) -> list[str]:
    return [hit.path for hit in page]


@pytest.fixture
def engines(tmp_path, use_engine):
    """Empty indexes on both engines under tmp_path, applied synchronously; tantivy in use."""
    engines = Engines(tmp_path, use_engine)
    for engine in ENGINES:
        engines.use(engine)
        for side in indexing.sides():
            side.backend.ensure_index()
    engines.use("tantivy")
    return engines


@pytest.fixture
def library(engines):
    """The items of test_search_api's library, and two more; returns {name: version}."""
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
            b'{"title": "budget figures", "rows": [1, 2, 3]}',  # no two sizes alike: no ties
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
        "report": api.put(
            "docs/report.txt", b"quarterly report, first draft", attributes={"status": "draft"}
        ),
        "repair": api.put("docs/repair.txt", b"repair manual of the budget printer", user="cid"),
    }
    engines.index()
    return versions


# --- query syntax ----------------------------------------------------------------------------

BUDGET = ["data/numbers.json", "docs/notes.txt", "docs/repair.txt", "docs/web/page.html", "pics/budget.png"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("install", ["docs/guide.md"]),
        ("budget", BUDGET),
        ("numbers", ["data/numbers.json"]),  # the path's words
        ("en", ["docs/guide.md"]),  # attribute values are searched too
        ("muser:ann", ["data/numbers.json", "docs/guide.md"]),
        (
            "content_type:text",
            ["docs/guide.md", "docs/notes.txt", "docs/repair.txt", "docs/report.txt", "docs/web/page.html"],
        ),
        ("content_type:text/html", ["docs/web/page.html"]),
        ("path_exact:docs/notes.txt", ["docs/notes.txt"]),
        ("name:guide", ["docs/guide.md"]),
        ("path:web", ["docs/web/page.html"]),
        ("lang:en", ["docs/guide.md"]),  # an attribute
        ("lang:EN", ["docs/guide.md"]),  # case-insensitive
        ("dc.creator:eve", ["docs/notes.txt"]),
        ("lang:*", ["docs/guide.md", "docs/web/page.html"]),
        ("lang:e*", ["docs/guide.md"]),
        ("status:dra*", ["docs/report.txt"]),
        ('"budget plan"', ["docs/web/page.html"]),  # a phrase
        ('"plan budget"', []),
        ("rep*", ["docs/repair.txt", "docs/report.txt"]),  # a prefix
        ("re?air", ["docs/repair.txt"]),  # a wildcard
        ("budget AND meeting", ["docs/notes.txt"]),
        ("install OR quarterly", ["docs/guide.md", "docs/report.txt"]),
        ("budget AND NOT muser:bob", ["data/numbers.json", "docs/repair.txt", "pics/budget.png"]),
        (
            "budget NOT printer",
            ["data/numbers.json", "docs/notes.txt", "docs/web/page.html", "pics/budget.png"],
        ),
        ("(install OR quarterly) AND muser:ann", ["docs/guide.md"]),
        ("size:[60 TO]", ["docs/notes.txt"]),  # a range on a number
        ("size:[TO 20]", ["pics/budget.png"]),
        ("muser:[a TO c]", ["data/numbers.json", "docs/guide.md", "docs/web/page.html", "docs/notes.txt"]),
        ("*", None),  # everything
    ],
)
def test_query_syntax(library, engines, text, expected):
    page = engines.same(text, page_size=100)
    if expected is None:
        expected = [v.node.path for v in library.values()]
    assert sorted(paths(page)) == sorted(expected)
    assert page.total == len(expected)


def test_a_date_range_in_the_query(library, engines):
    year = library["guide"].mtime.year
    assert engines.same(f"mtime:[{year} TO {year + 1}]").total == len(library)
    assert engines.same(f"mtime:[TO {year - 1}]").total == 0


@pytest.mark.parametrize("text", ["budget (plan", '"budget plan', "budget AND", "muser:", "size:[x TO 5]"])
def test_malformed_query_raises_invalid_query(library, text):
    with pytest.raises(InvalidQuery) as error:
        search(text)
    assert repr(text) in str(error.value)


def test_the_query_syntax_is_not_read_as_plain_words(library):
    # Haystack's generic path (run_haystack) reads "lang:en" as words and finds nothing.
    assert paths(search("lang:en")) == ["docs/guide.md"]
    assert paths(search("muser:cid", sort="path")) == ["docs/repair.txt", "pics/budget.png"]


# --- filters, as-of, the recycle bin ---------------------------------------------------------


DOCS = ["docs/guide.md", "docs/notes.txt", "docs/repair.txt", "docs/report.txt", "docs/web/page.html"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"under": "docs"}, DOCS),
        ({"under": "/docs/web"}, ["docs/web/page.html"]),
        ({"content_type": "text"}, DOCS),
        ({"content_type": "application/json"}, ["data/numbers.json"]),
        (
            {"muser": ["cid", "ann"]},
            ["data/numbers.json", "docs/guide.md", "docs/repair.txt", "pics/budget.png"],
        ),
        ({"muser": "bob"}, ["docs/notes.txt", "docs/web/page.html"]),
        ({"size_range": (60, None)}, ["docs/notes.txt"]),
        ({"size_range": (None, 20)}, ["pics/budget.png"]),
        ({"attributes": {"lang": "DE"}}, ["docs/web/page.html"]),
        ({"attributes": {"lang": None}}, ["docs/guide.md", "docs/web/page.html"]),
        ({"attributes": {"dc.creator": "eve"}}, ["docs/notes.txt"]),
        ({"under": "docs", "muser": "bob", "attributes": {"lang": None}}, ["docs/web/page.html"]),
    ],
)
def test_filters(library, engines, kwargs, expected):
    page = engines.same(page_size=100, **kwargs)
    assert sorted(paths(page)) == expected
    assert page.total == len(expected)
    budget = engines.same("budget", page_size=100, **kwargs)
    assert sorted(paths(budget)) == [p for p in expected if p in BUDGET]


def test_filters_by_mtime(library, engines):
    page_time = library["page"].mtime
    assert paths(engines.same(mtime_range=(None, page_time))) == ["docs/guide.md"]
    assert engines.same(mtime_range=(page_time, None)).total == len(library) - 1
    assert engines.same(mtime_range=(library["guide"].mtime, timezone.now())).total == len(library)


def test_filters_do_not_change_relevance_order(library):
    plain = paths(search("budget"))
    assert paths(search("budget", under="docs")) == [p for p in plain if p.startswith("docs/")]


def test_as_of_gives_the_versions_lookup_gives(library, engines):
    before_edit = timezone.now()
    api.put("docs/guide.md", b"Rewritten from scratch")
    api.delete("docs/notes.txt")
    after = timezone.now()
    engines.index()
    assert paths(engines.same("install", as_of=before_edit)) == ["docs/guide.md"]
    assert paths(engines.same("rewritten", as_of=before_edit)) == []
    assert paths(engines.same("rewritten", as_of=after)) == ["docs/guide.md"]
    assert paths(engines.same("meeting", as_of=before_edit)) == ["docs/notes.txt"]
    assert paths(engines.same("meeting", as_of=after)) == []  # deleted by then
    assert paths(engines.same("meeting", as_of=after, include_deleted=True)) == ["docs/notes.txt"]
    assert engines.same(as_of=library["guide"].mtime).total == 0  # nothing before the first write
    page = engines.same(as_of=before_edit, page_size=100)
    assert {hit.path: hit.serial for hit in page} == {
        path: api.lookup(path, before=before_edit).serial for path in paths(page)
    }
    assert page.total == len(library)


def test_as_of_at_the_ends_of_the_validity_interval(library, engines):
    edited = api.put("docs/guide.md", b"Rewritten from scratch")
    engines.index()
    moment = edited.mtime
    page = engines.same("guide", as_of=moment, page_size=100)
    assert [h.serial for h in page if h.path == "docs/guide.md"] == [library["guide"].serial]
    assert api.lookup("docs/guide.md", before=moment).serial == library["guide"].serial
    assert engines.same("rewritten", as_of=moment).total == 0
    just_after = moment + timedelta(microseconds=1)
    assert paths(engines.same("rewritten", as_of=just_after)) == ["docs/guide.md"]
    assert engines.same("install", as_of=just_after).total == 0


def test_history_and_the_recycle_bin(library, engines):
    api.put("docs/guide.md", b"Uninstall guide", user="ann")
    api.delete("docs/notes.txt")
    engines.index()
    assert engines.same("install").total == 0
    assert paths(engines.same("install", history=True)) == ["docs/guide.md"]
    assert paths(engines.same("meeting", history=True)) == ["docs/notes.txt"]  # the HISTORY version
    recycled = engines.same("meeting", cluster=Cluster.DELETED)
    assert [h.fields["cluster"] for h in recycled] == [Cluster.DELETED]
    assert engines.same("meeting", history=True, include_deleted=True).total == 2
    hits = engines.same("guide", history=True, sort="mtime").hits
    assert [h.fields["cluster"] for h in hits] == [Cluster.HISTORY, Cluster.NORMAL]
    assert hits[0].fields["valid_until"] == hits[1].fields["mtime"]


# --- sorting, paging, stored fields ----------------------------------------------------------


@pytest.mark.parametrize("sort", [s for s in SORTS if s != "relevance"])
def test_sorting_and_paging_with_exact_totals(library, engines, sort):
    everything = paths(engines.same(sort=sort, page_size=100))
    assert len(everything) == len(library)
    pages = [engines.same(sort=sort, page=n, page_size=3) for n in (1, 2, 3)]
    assert [p for page in pages for p in paths(page)] == everything
    assert [(page.total, page.num_pages, page.has_next) for page in pages] == [
        (7, 3, True),
        (7, 3, True),
        (7, 3, False),
    ]
    assert list(engines.same(sort=sort, page=9, page_size=3)) == []


def test_sort_keys(library):
    assert paths(search(sort="path", page_size=100)) == sorted(v.node.path for v in library.values())
    assert paths(search(sort="-mtime", page_size=1)) == ["docs/repair.txt"]
    assert paths(search(sort="size", page_size=1)) == ["pics/budget.png"]
    assert all(hit.score is None for hit in search(sort="size"))
    assert all(hit.score > 0 for hit in search("budget"))


def test_paths_sort_as_written(engines):
    for path in ("b.txt", "B/a.txt", "a.txt", "Ä.txt", "A.txt"):
        api.put(path, b"x")
    engines.index()
    assert paths(engines.same(sort="path")) == ["A.txt", "B/a.txt", "a.txt", "b.txt", "Ä.txt"]


def test_relevance_ranks_name_matches_first(library):
    assert paths(search("budget"))[0] == "pics/budget.png"


def test_hits_hold_the_same_stored_fields_as_on_whoosh(library, engines, django_assert_num_queries):
    whoosh, tantivy = engines.both(sort="path", page_size=100)
    assert [h.fields for h in tantivy] == [h.fields for h in whoosh]
    with django_assert_num_queries(0):
        hit = search("install").hits[0]
    assert (hit.path, hit.serial, hit.node_id) == (
        "docs/guide.md",
        library["guide"].serial,
        library["guide"].node_id,
    )
    assert hit.fields["attributes"] == {"lang": "en", "level": "1"}
    assert hit.fields["mtime"] == library["guide"].mtime
    assert hit.fields["valid_until"] is None


# --- highlights ------------------------------------------------------------------------------


def test_highlights_escape_everything_but_the_marks(library, engines):
    snippet = search("budget", under="docs/web").hits[0].highlights["text"]
    assert "<mark>Budget</mark>" in snippet
    assert "Tom &amp; Jerry" in snippet
    assert "<h1>" not in snippet
    api.put("docs/evil.txt", b"<script>alert(1)</script> budget")
    engines.index()
    evil = search("budget", under="docs", sort="-mtime").hits[0]
    assert evil.path == "docs/evil.txt"
    assert "&lt;/script&gt;" in evil.highlights["text"] and "</script>" not in evil.highlights["text"]
    assert "<mark>budget</mark>" in evil.highlights["text"]


def test_highlights_of_stems_wildcards_and_paths(library):
    (notes,) = search("meetings", under="docs", muser="bob", attributes={"dc.creator": None})
    assert "<mark>meeting</mark>" in notes.highlights["text"]  # the stem matched
    (repair,) = search("repa*")
    assert "<mark>repair</mark>" in repair.highlights["text"]
    (page,) = search("path:web")
    assert page.highlights == {"path": "docs/<mark>web</mark>/page.html"}  # nothing in its text
    assert search("budget", highlight=False).hits[0].highlights == {}


# --- facets ----------------------------------------------------------------------------------


def test_facets_count_fields_and_attributes_over_the_matches(library, engines, settings):
    settings.VERSIONED_ITEMS = {
        **settings.VERSIONED_ITEMS,
        "FACET_ATTRIBUTES": ["lang", "dc.creator", "status"],
    }
    whoosh, tantivy = engines.both(facets=True)
    assert tantivy.facets == whoosh.facets
    assert tantivy.facets["muser"] == [("ann", 2), ("bob", 2), ("cid", 2), ("", 1)]  # as Whoosh counts it
    assert tantivy.facets["cluster"] == [(0, 7)]
    assert tantivy.facets["content_type"][0] == ("text/plain", 3)
    assert tantivy.facets["attributes"] == {
        "lang": [("de", 1), ("en", 1)],
        "dc.creator": [("eve", 1)],
        "status": [("draft", 1)],
    }
    whoosh, tantivy = engines.both("budget", facets=True)
    assert tantivy.facets == whoosh.facets
    assert tantivy.facets["muser"] == [("bob", 2), ("cid", 2), ("ann", 1)]
    assert tantivy.facets["attributes"]["lang"] == [("de", 1)]
    assert search("budget").facets == {}  # only when asked for


# --- bounds ----------------------------------------------------------------------------------


def test_a_wildcard_matching_too_many_words_is_refused(library, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_MAX_EXPANSION": 1}
    with pytest.raises(InvalidQuery, match="'rep\\*' matches more than 1 words"):
        search("rep*")
    with pytest.raises(InvalidQuery, match="'lang:\\*' matches more than 1 words"):
        search("lang:*")
    assert paths(search("repa*")) == ["docs/repair.txt"]


def test_a_wildcard_reading_too_much_of_the_index_is_refused(library, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_MAX_TERMS_SCANNED": 5}
    with pytest.raises(InvalidQuery, match="needs more than 5 words of the index to be read"):
        search("*a*")


def test_the_work_of_a_search_is_counted(library):
    backend = indexing.latest_side().backend
    raw = run_tantivy(backend, q.SearchRequest(query="rep*", facets=("lang",), want_facets=True))
    assert raw.work.terms_expanded == 2  # repair, report
    assert raw.work.facet_values == 2  # de, en
    assert raw.total == 2


# --- spelling suggestions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("budgte", "budget"),
        ("Meetnig notes", "Meeting notes"),
        ("pip AND instll AND gide", "pip AND install AND guide"),
        ("numbrs", "numbers"),
        ("path:nmbers", "path:numbers"),
        ("budget", None),
        ("zzyzx", None),
        ("NOT budgte", None),
    ],
)
def test_spelling_suggestions(library, engines, text, suggestion):
    whoosh, tantivy = engines.both(text)
    assert tantivy.suggestion == whoosh.suggestion == suggestion


def test_suggestions_only_when_few_documents_match_unless_asked(library):
    assert search("budget OR budgte").suggestion is None  # five matches: not even computed
    assert search("budget OR budgte", suggest=True).suggestion == "budget OR budget"
    assert search("budgte", suggest=False).suggestion is None


# --- grants ----------------------------------------------------------------------------------


@pytest.fixture
def tree(engines, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "DEFAULT_ACCESS": ""}
    with api.batch():
        api.put("team/alpha/plan.txt", b"common budget confidential plan", user="ann")
        api.put("team/alpha/notes.txt", b"common budget notes", user="ann")
        api.put("team/alphabet.txt", b"common budget letters", user="bob")
        api.put("team/beta/plan.txt", b"common budget confederate plan", user="bob")
        api.put("memo.txt", b"common memo", user="cid")
    api.delete("team/alpha/notes.txt")
    engines.index()


@pytest.fixture
def reader(django_user_model):
    user = django_user_model.objects.create_user("reader")
    api.grant("team/beta", user=user)
    api.grant("memo.txt", user=user)
    return user


def test_a_user_finds_only_what_their_grants_cover(tree, reader, engines):
    assert sorted(paths(engines.same("common", user=reader))) == ["memo.txt", "team/beta/plan.txt"]
    assert engines.same("common").total == 4
    history = engines.same("common", history=True, user=reader, page_size=1)
    assert (len(history), history.total) == (1, 2)
    assert engines.same("common", cluster=Cluster.DELETED, user=reader).total == 0
    api.grant("team/alpha", user=reader)
    deleted = engines.same("common", cluster=Cluster.DELETED, user=reader)
    assert paths(deleted) == ["team/alpha/notes.txt"]  # a grant on a folder does not cover team/alphabet.txt
    assert engines.same("letters", user=reader).total == 0


def test_facets_and_suggestions_count_readable_documents_only(tree, reader, engines):
    whoosh, tantivy = engines.both("common", user=reader, facets=True)
    assert tantivy.facets == whoosh.facets
    assert tantivy.facets["muser"] == [("bob", 1), ("cid", 1)]
    assert search("confidentail", suggest=True).suggestion == "confidential"
    whoosh, tantivy = engines.both("confidentail", user=reader, suggest=True)
    assert tantivy.suggestion == whoosh.suggestion != "confidential"


@pytest.mark.parametrize("who", ["nobody", "anonymous"])
def test_a_user_who_may_read_nothing_finds_nothing(tree, django_user_model, who):
    user = django_user_model.objects.create_user("nobody") if who == "nobody" else AnonymousUser()
    page = search("common", user=user, facets=True, suggest=True)
    assert (page.hits, page.total, page.suggestion) == ([], 0, None)
    assert page.facets["muser"] == [] and page.facets["attributes"] == {}


# --- the example site ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "engine"), [(None, "whoosh"), ("whoosh", "whoosh"), ("tantivy", "tantivy")]
)
def test_the_example_site_chooses_its_engine_from_the_environment(
    monkeypatch, tmp_path, settings, value, engine
):
    monkeypatch.setenv("VI_DATA_DIR", str(tmp_path))
    if value is None:
        monkeypatch.delenv("VI_SEARCH_ENGINE", raising=False)
    else:
        monkeypatch.setenv("VI_SEARCH_ENGINE", value)
    found = runpy.run_path(str(EXAMPLE_SETTINGS))["HAYSTACK_CONNECTIONS"]
    for alias in ALIASES:
        assert found[alias]["ENGINE"] == settings.ENGINES[engine]
        assert found[alias]["PATH"] == str(tmp_path / engine / alias)


def test_the_example_site_refuses_an_unknown_engine(monkeypatch, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("VI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VI_SEARCH_ENGINE", "lucene")
    with pytest.raises(ImproperlyConfigured, match="VI_SEARCH_ENGINE 'lucene'"):
        runpy.run_path(str(EXAMPLE_SETTINGS))
