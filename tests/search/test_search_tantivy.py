"""The tantivy engine (versioned_items.search.backends.tantivy): Haystack's SearchQuerySet API on
real indexes in temporary folders, the writers' lock, the version marker, the app's search.

Skipped as a whole where tantivy is not installed (it is an optional extra).
"""

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

tantivy = pytest.importorskip("tantivy")

from django.contrib.auth.models import User  # noqa: E402
from haystack import connections, indexes  # noqa: E402
from haystack.exceptions import SearchBackendError, SkipDocument  # noqa: E402
from haystack.inputs import Exact, Raw  # noqa: E402
from haystack.query import SQ, SearchQuerySet  # noqa: E402
from haystack.utils.loading import UnifiedIndex  # noqa: E402
from whoosh import query as wq  # noqa: E402

from versioned_items import api  # noqa: E402
from versioned_items.exceptions import IndexUnavailable, InvalidQuery  # noqa: E402
from versioned_items.search import indexing  # noqa: E402
from versioned_items.search.api import search  # noqa: E402
from versioned_items.search.backends import tantivy as engine  # noqa: E402
from versioned_items.search.backends.tantivy_fields import naive_utc  # noqa: E402
from versioned_items.search.search_indexes import OPEN_END  # noqa: E402

from ..search_fixtures import ALIASES  # noqa: E402

ENGINE = "versioned_items.search.backends.tantivy.TantivyEngine"
OTHER = "tantivy_other"
BASE = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


class PeopleIndex(indexes.SearchIndex, indexes.Indexable):
    """An ordinary Haystack index: a document field, a faceted name, numbers, a date, a list."""

    text = indexes.CharField(document=True)
    name = indexes.CharField(model_attr="username", faceted=True)
    rank = indexes.IntegerField(model_attr="id")
    weight = indexes.FloatField()
    active = indexes.BooleanField(model_attr="is_active")
    joined = indexes.DateTimeField(model_attr="date_joined")
    tags = indexes.MultiValueField()
    nothing = indexes.MultiValueField()
    hidden = indexes.CharField(indexed=False, model_attr="last_name")
    name_auto = indexes.EdgeNgramField(model_attr="first_name")

    def get_model(self):
        return User

    def prepare_text(self, obj):
        if obj.username.startswith("skip"):
            raise SkipDocument
        return f"{obj.username} {obj.first_name}"

    def prepare_weight(self, obj):
        return obj.id / 2

    def prepare_tags(self, obj):
        return ["odd" if obj.id % 2 else "even", f"group {obj.id % 3}"]

    def prepare_nothing(self, obj):
        return []


WORDS = {
    "alice": "running shoes <for> the marathon",
    "bob": "walking boots & socks",
    "carol": "running socks for the track",
    "dave": "swimming goggles",
    "erin": "runner's guide to marathons",
}


def people(names=tuple(WORDS)):
    """Users (not saved): ids from 1, joined a day and a microsecond apart."""
    return [
        User(
            id=i,
            username=name,
            first_name=WORDS.get(name, "plain words"),
            last_name=f"secret {i}",
            is_active=i != 4,
            date_joined=BASE + timedelta(days=i, microseconds=i),
        )
        for i, name in enumerate(names, start=1)
    ]


@pytest.fixture
def connect(tmp_path):
    """``connect(**options)``: the tantivy backend of connection OTHER (a folder under tmp_path)
    holding PeopleIndex."""

    def connect(**options):
        connections.connections_info[OTHER] = {"ENGINE": ENGINE, "PATH": str(tmp_path / OTHER), **options}
        connections.reload(OTHER)
        unified = UnifiedIndex()
        unified.build(indexes=[PeopleIndex()])
        connections[OTHER]._index = unified
        return connections[OTHER].get_backend()

    yield connect
    connections.connections_info.pop(OTHER, None)
    connections.thread_local.connections.pop(OTHER, None)


@pytest.fixture
def filled(connect):
    backend = connect()
    backend.update(PeopleIndex(), people())
    return backend


def sqs():
    return SearchQuerySet(using=OTHER)


def names(results) -> list[str]:
    return [r.name for r in results]


# --- writing and reading back ---


def test_stored_fields_come_back_as_python_values(filled):
    (alice,) = sqs().filter(name="alice")
    assert alice.pk == "1" and alice.model is User
    assert (alice.rank, alice.weight, alice.active) == (1, 0.5, True)
    assert alice.joined == (BASE + timedelta(days=1, microseconds=1)).replace(tzinfo=None)  # naive UTC
    assert alice.tags == ["odd", "group 1"]
    assert alice.nothing == []  # as Haystack's Whoosh backend gives an empty list
    assert alice.hidden == "secret 1"
    assert alice.id == "auth.user.1"


def test_update_replaces_documents_in_one_commit(filled):
    renamed = people()[:1]
    renamed[0].first_name = "cycling"
    filled.update(PeopleIndex(), renamed)
    assert sqs().count() == 5
    assert names(sqs().filter(content="cycling")) == ["alice"]
    assert sqs().filter(content="marathon").count() == 1  # erin's only: alice's old text is gone


def test_skip_document_skips_that_object_only(connect):
    backend = connect()
    backend.update(PeopleIndex(), people(["skipme", "bob"]))
    assert names(sqs()) == ["bob"]


def test_remove_and_clear(filled):
    filled.remove("auth.user.2")
    assert sorted(names(sqs())) == ["alice", "carol", "dave", "erin"]
    filled.clear(models=[User])
    assert sqs().count() == 0
    filled.update(PeopleIndex(), people())
    filled.clear()
    assert sqs().count() == 0


def test_a_small_batch_is_one_segment_in_the_order_given(connect):
    backend = connect()
    backend.update(PeopleIndex(), people())
    assert backend.searcher().num_segments == 1  # one indexing thread for a small batch
    assert names(sqs()) == list(WORDS)  # ties in relevance keep the order of writing


def test_one_commit_leaves_few_segments_after_many(connect):
    backend = connect()
    for person in people() * 6:  # 30 commits of one document each
        backend.update(PeopleIndex(), [person])
    searcher = backend.searcher()
    assert searcher.num_docs == 5
    # The writers waited for their merges: tantivy's merge policy keeps the segments few.
    assert searcher.num_segments < 10


# --- SearchQuerySet ---


@pytest.mark.parametrize(
    ("lookup", "expected"),
    [
        ({"content": "running"}, ["alice", "carol"]),  # stemmed: "running" finds run
        ({"content": "running socks"}, ["carol"]),
        ({"name": "alice"}, ["alice"]),
        ({"name__exact": "alice"}, ["alice"]),
        ({"name__in": ["bob", "dave"]}, ["bob", "dave"]),
        ({"name__startswith": "ca"}, ["carol"]),
        ({"name__contains": "ri"}, ["erin"]),
        ({"rank": 3}, ["carol"]),
        ({"rank__gt": 3}, ["dave", "erin"]),
        ({"rank__gte": 3}, ["carol", "dave", "erin"]),
        ({"rank__lt": 2}, ["alice"]),
        ({"rank__lte": 2}, ["alice", "bob"]),
        ({"rank__range": [2, 4]}, ["bob", "carol", "dave"]),
        ({"rank__in": [1, 5]}, ["alice", "erin"]),
        ({"weight__gte": 2.0}, ["dave", "erin"]),
        ({"active": False}, ["dave"]),
        ({"tags": "odd"}, ["alice", "carol", "erin"]),
        ({"tags": Exact("group 1")}, ["alice", "dave"]),
        ({"text__fuzzy": "marathom"}, ["alice", "erin"]),  # marathon, marathons: one edit
        ({"text__fuzzy": "runer"}, ["alice", "carol", "erin"]),  # run, runner: up to two
    ],
)
def test_filters(filled, lookup, expected):
    assert sorted(names(sqs().filter(**lookup))) == expected


def test_date_filters_keep_the_microseconds(filled):
    second = BASE + timedelta(days=2, microseconds=2)  # bob joined exactly then
    assert sorted(names(sqs().filter(joined__gte=second))) == ["bob", "carol", "dave", "erin"]
    assert sorted(names(sqs().filter(joined__gt=second))) == ["carol", "dave", "erin"]
    assert names(sqs().filter(joined__lt=second)) == ["alice"]
    assert names(sqs().filter(joined__range=[second, second])) == ["bob"]
    # An aware datetime in another zone means the same moment.
    tokyo = second.astimezone(datetime.now().astimezone().tzinfo)
    assert names(sqs().filter(joined__lt=tokyo)) == ["alice"]


def test_not_or_and_sq(filled):
    assert sorted(names(sqs().exclude(tags="odd"))) == ["bob", "dave"]
    assert sorted(names(sqs().filter(SQ(name="alice") | SQ(name="bob")))) == ["alice", "bob"]
    assert names(sqs().filter(content="socks").exclude(name="bob")) == ["carol"]
    assert sorted(names(sqs().filter(SQ(rank__lt=2) | ~SQ(tags="odd")))) == ["alice", "bob", "dave"]


def test_auto_query_and_raw_search(filled):
    assert sorted(names(sqs().auto_query("running -track"))) == ["alice"]
    assert names(sqs().auto_query('"walking boots"')) == ["bob"]
    assert sorted(names(sqs().raw_search("run* AND NOT name:erin"))) == ["alice", "carol"]
    assert sorted(names(sqs().filter(content=Raw("marathon OR goggles")))) == ["alice", "dave", "erin"]


def test_order_by_and_paging_with_exact_totals(filled):
    by_rank = sqs().order_by("-rank")
    assert names(by_rank) == ["erin", "dave", "carol", "bob", "alice"]
    assert names(sqs().order_by("name")) == ["alice", "bob", "carol", "dave", "erin"]
    assert names(sqs().order_by("-joined")[:2]) == ["erin", "dave"]
    page = by_rank[2:4]
    assert names(page) == ["carol", "bob"]
    assert by_rank.count() == 5 and len(sqs().filter(tags="odd")) == 3
    assert names(by_rank[10:20]) == []
    # Several keys: sorted in Python, still paged and counted.
    assert names(sqs().order_by("active", "-rank")[:3]) == ["dave", "erin", "carol"]


def test_sorting_on_a_field_without_a_column_is_an_error(filled):
    with pytest.raises(SearchBackendError, match="cannot sort on 'text'"):
        list(sqs().order_by("text"))


def test_relevance_orders_by_score(filled):
    results = list(sqs().filter(SQ(content="marathon") | SQ(content="running")))
    assert results[0].name == "alice"  # both words
    assert len(results) == 3
    assert results[0].score > results[-1].score


def test_field_facets(filled):
    counts = sqs().facet("name").facet("tags").facet("rank").facet("active").facet_counts()["fields"]
    assert counts["name"] == [(n, 1) for n in ["alice", "bob", "carol", "dave", "erin"]]
    assert counts["tags"] == [("odd", 3), ("even", 2), ("group 1", 2), ("group 2", 2), ("group 0", 1)]
    assert counts["rank"] == [(i, 1) for i in range(1, 6)]
    assert counts["active"] == [(True, 4), (False, 1)]
    narrowed = sqs().filter(content="running").facet("tags").facet_counts()["fields"]["tags"]
    assert narrowed == [("odd", 2), ("group 0", 1), ("group 1", 1)]


def test_date_and_query_facets(filled):
    start = BASE + timedelta(days=1)
    end = start + timedelta(days=4)
    counts = (
        sqs()
        .date_facet("joined", start_date=start, end_date=end, gap_by="day", gap_amount=2)
        .query_facet("rank", "[1 TO 2]")
        .facet_counts()
    )
    assert counts["dates"]["joined"] == [(naive_utc(start), 2), (naive_utc(start + timedelta(days=2)), 2)]
    assert counts["queries"] == {"rank:[1 TO 2]": 2}


def test_narrow(filled):
    assert sorted(names(sqs().narrow("tags:odd").filter(content="running"))) == ["alice", "carol"]


def test_highlights_are_escaped_and_marked(filled):
    (alice,) = sqs().filter(content="marathon").filter(name="alice").highlight()
    (snippet,) = alice.highlighted["text"]
    assert "<mark>marathon</mark>" in snippet
    assert "&lt;for&gt;" in snippet and "<for>" not in snippet
    (bob,) = sqs().filter(content="boots").highlight()
    assert bob.highlighted["text"] == ["bob walking <mark>boots</mark> &amp; socks"]


def test_autocomplete_on_edge_ngrams(filled):
    # EdgeNgramField: the starts of each word, as Haystack's Whoosh backend indexes them.
    assert sorted(names(sqs().autocomplete(name_auto="marat"))) == ["alice", "erin"]
    assert names(sqs().autocomplete(name_auto="swi gog")) == ["dave"]
    assert names(sqs().autocomplete(name_auto="oggles")) == []  # not the start of a word


def test_more_like_this(filled):
    similar = names(sqs().more_like_this(people()[2]))  # carol: running socks for the track
    assert similar and "carol" not in similar
    assert set(similar) <= {"alice", "bob", "erin"}


def test_queries_tantivy_cannot_run_are_refused(filled):
    # Whoosh's parser reads "1*" on a number field as 1, on either engine.
    assert names(sqs().filter(rank__startswith="1")) == ["alice"]
    with pytest.raises(InvalidQuery, match="holds numbers or dates"):
        filled.compile(wq.Prefix("rank", "1"))
    with pytest.raises(InvalidQuery, match="cannot run"):
        filled.compile(wq.Sequence([wq.Term("text", "a"), wq.Term("text", "b")]))


def test_a_text_range_lists_the_terms_it_covers(filled):
    assert sorted(names(sqs().filter(name__range=["b", "d"]))) == ["bob", "carol"]
    assert sorted(names(sqs().filter(name__gt="carol"))) == ["dave", "erin"]


# --- opening: missing, damaged and foreign indexes ---


def test_other_connections_create_a_missing_index(connect, tmp_path):
    backend = connect()
    assert sqs().count() == 0
    assert os.path.exists(tmp_path / OTHER / engine.MARKER)
    assert backend.doc_count() == 0


def test_an_index_of_another_tantivy_version_needs_a_rebuild(filled, connect, tmp_path):
    marker = tmp_path / OTHER / engine.MARKER
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps(data | {"tantivy": "0.26", "index_format": "6"}))
    backend = connect()
    with pytest.raises(IndexUnavailable, match=r"built by tantivy 0\.26 .* this process has tantivy 0\.27"):
        sqs().count()
    with pytest.raises(IndexUnavailable):
        backend.writer()
    backend.clear()  # an explicit request for an empty index makes a current one
    assert sqs().count() == 0
    assert json.loads(marker.read_text())["tantivy"] == engine.library_version()["tantivy"]


def test_an_index_without_marker_or_for_other_fields_is_never_opened(filled, connect, tmp_path):
    marker = tmp_path / OTHER / engine.MARKER
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps(data | {"fields": "0123456789abcdef"}))
    connect()
    with pytest.raises(IndexUnavailable, match="other fields"):
        sqs().count()
    marker.unlink()
    connect()
    with pytest.raises(IndexUnavailable, match="no version marker"):
        sqs().count()


def test_an_empty_index_for_other_fields_takes_the_new_fields(connect, tmp_path):
    backend = connect()
    backend.ensure_index()
    marker = tmp_path / OTHER / engine.MARKER
    marker.write_text(json.dumps(json.loads(marker.read_text()) | {"fields": "0123456789abcdef"}))
    backend = connect()
    backend.update(PeopleIndex(), people())  # nothing was lost: no rebuild asked for
    assert sqs().count() == 5
    assert json.loads(marker.read_text())["fields"] == backend.marker()["fields"]


def test_a_damaged_index_is_unavailable(filled, connect, tmp_path):
    (tmp_path / OTHER / "meta.json").write_text("{not json")
    connect()
    with pytest.raises(IndexUnavailable, match="cannot be read"):
        sqs().count()


def test_a_deleted_index_is_reported_not_served(filled, tmp_path):
    assert sqs().count() == 5
    import shutil

    shutil.rmtree(tmp_path / OTHER)
    with pytest.raises(IndexUnavailable, match="no longer exists"):
        sqs().count()


# --- writers and readers ---


def test_writers_wait_for_the_lock(filled, settings):
    settings.VERSIONED_ITEMS = {"SEARCH_LOCK_TIMEOUT": 30}
    other = tantivy.Index.open(filled.path)
    held = other.writer(heap_size=20_000_000, num_threads=1)
    released = threading.Event()

    def release():
        released.wait(10)
        held.rollback()
        held.wait_merging_threads()  # drops the lock

    thread = threading.Thread(target=release)
    thread.start()
    # The update starts while the lock is held; it must wait for it, not fail.
    threading.Timer(0.2, released.set).start()
    filled.update(PeopleIndex(), people(["frank"]))
    thread.join()
    assert released.is_set()
    assert "frank" in names(sqs().filter(name="frank"))


def test_a_writer_that_cannot_get_the_lock_raises(filled, settings):
    settings.VERSIONED_ITEMS = {"SEARCH_LOCK_TIMEOUT": 0.2}
    held = tantivy.Index.open(filled.path).writer(heap_size=20_000_000, num_threads=1)
    try:
        with pytest.raises(IndexUnavailable, match="locked by another writer"):
            filled.remove("auth.user.1")
    finally:
        held.wait_merging_threads()
    filled.remove("auth.user.1")  # the lock is free again
    assert sqs().count() == 4


def test_searches_see_commits_of_other_processes(filled, tmp_path):
    assert sqs().count() == 5
    # Another process deletes a document with tantivy directly.
    script = (
        "import sys, tantivy\n"
        "from versioned_items.search.backends import tantivy_fields as tf\n"
        "ix = tantivy.Index.open(sys.argv[1]); tf.register(ix)\n"
        "w = ix.writer(20_000_000, 1); w.delete_documents_by_term('id', 'auth.user.5')\n"
        "w.commit(); w.wait_merging_threads()\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, filled.path],
        check=True,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert sqs().count() == 4


def test_a_writer_killed_inside_its_work_leaves_the_last_commit(filled, tmp_path):
    # A child adds documents and commits once, then adds more and is killed before committing.
    script = (
        "import os, sys, tantivy, signal\n"
        "from versioned_items.search.backends import tantivy_fields as tf\n"
        "ix = tantivy.Index.open(sys.argv[1]); tf.register(ix)\n"
        "w = ix.writer(20_000_000, 1)\n"
        "def doc(i):\n"
        "    return tantivy.Document(id=f'x.{i}', django_ct='auth.user', django_id=str(i), text='k')\n"
        "w.add_document(doc(100)); w.commit()\n"
        "for i in range(101, 2000): w.add_document(doc(i))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, filled.path],
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert child.returncode == -9
    assert filled.searcher().num_docs == 6  # the five, and the one committed document
    (frank,) = people(["frank"])
    frank.id = 99
    filled.update(PeopleIndex(), [frank])  # the lock died with the process
    assert filled.searcher().num_docs == 7


def test_threads_search_while_a_writer_commits(filled):
    errors, counts = [], []
    unified = connections[OTHER].get_unified_index()

    def read():
        # Haystack's connections are per thread: each reader has its own backend and index.
        connections[OTHER]._index = unified
        try:
            for _ in range(50):
                counts.append(SearchQuerySet(using=OTHER).filter(content="running").count())
        except Exception as error:  # reported below
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for person in people() * 2:
        filled.update(PeopleIndex(), [person])
    for reader in readers:
        reader.join()
    assert errors == []
    assert set(counts) == {2}


# --- the app's indexes on tantivy (through the generic Haystack path of search/query.py) ---


@pytest.fixture
def app_on_tantivy(tmp_path, settings):
    """The app's two connections on the tantivy engine, in tmp_path, applied synchronously."""
    indexing.stop_background(10)
    saved = {alias: dict(connections.connections_info[alias]) for alias in ALIASES}
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "SEARCH_SYNC": True}
    for alias in ALIASES:
        connections.connections_info[alias] = {"ENGINE": ENGINE, "PATH": str(tmp_path / alias)}
        connections.reload(alias)
    yield
    indexing.stop_background(10)
    for alias, info in saved.items():
        connections.connections_info[alias] = info
        connections.reload(alias)


@pytest.mark.django_db
def test_the_apps_connections_report_a_missing_index(app_on_tantivy):
    with pytest.raises(IndexUnavailable, match="does not exist"):
        search("anything")
    for side in indexing.sides():
        side.backend.ensure_index()
    assert search("anything").total == 0


@pytest.mark.django_db
def test_the_apps_search_runs_on_tantivy(app_on_tantivy):
    for side in indexing.sides():
        side.backend.ensure_index()
    api.put("docs/report.txt", b"quarterly <report> with figures", attributes={"status": "final"})
    api.put("docs/notes.md", b"meeting notes", content_type="text/markdown")
    api.put("docs/report.txt", b"quarterly report, second draft")
    indexing.wait_for_index()
    page = search("quarterly")
    assert [h.path for h in page] == ["docs/report.txt"] and page.total == 1
    assert "<mark>quarterly</mark>" in page.hits[0].highlights["text"]
    assert search("quarterly", history=True).total == 2
    assert [h.path for h in search("", sort="path")] == ["docs/notes.md", "docs/report.txt"]
    assert [h.path for h in search("", under="docs", content_type="text/markdown")] == ["docs/notes.md"]
    first = search("figures", history=True).hits[0]
    assert first.fields["valid_until"] is not None
    assert search("report", as_of=first.fields["valid_until"] - timedelta(microseconds=1)).total == 1
    assert search("", history=True, attributes={"status": "final"}).total == 1
    # Stored open ends read back as the index's open end, so the database comparison agrees.
    assert indexing.compare().count == 0


@pytest.mark.django_db
def test_the_apps_search_on_tantivy_honours_grants(app_on_tantivy, django_user_model, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "DEFAULT_ACCESS": ""}
    for side in indexing.sides():
        side.backend.ensure_index()
    for path in ("team/alpha/plan.txt", "team/alphabet.txt", "team/beta/plan.txt", "memo.txt"):
        api.put(path, b"common plan")
    api.delete("team/beta/plan.txt")
    indexing.wait_for_index()
    reader = django_user_model.objects.create_user("reader")
    api.grant("team/alpha", user=reader)
    api.grant("team/beta", user=reader)
    api.grant("memo.txt", user=reader)
    assert sorted(h.path for h in search("common", user=reader)) == ["memo.txt", "team/alpha/plan.txt"]
    history = search("common", history=True, user=reader, page_size=1)
    assert (len(history), history.total) == (1, 3)
    deleted = search("common", history=True, cluster=2, user=reader)
    assert [h.path for h in deleted] == ["team/beta/plan.txt"]
    nobody = django_user_model.objects.create_user("nobody")
    assert search("common", user=nobody, facets=True).total == 0


def test_open_end_fits(filled):
    # Dates are 64-bit integers of microseconds: the app's open end is stored as it is.
    assert naive_utc(OPEN_END) == datetime(9999, 12, 31)


@pytest.fixture
def app_indexes(app_on_tantivy):
    for side in indexing.sides():
        side.backend.ensure_index()
    api.put("docs/report.txt", b"quarterly report", attributes={"status": "final"})
    api.put("docs/repair.txt", b"repair manual")
    api.put("docs/notes.md", b"meeting notes about the report", content_type="text/markdown")
    api.put("docs/report.txt", b"quarterly report, second draft", attributes={"status": "draft"})
    indexing.wait_for_index()
    return indexing.latest_side().backend, indexing.history_side().backend


@pytest.mark.django_db
def test_the_apps_query_trees_compile_with_bounded_expansions(app_indexes):
    # The app's own parser and expansion bounds (query.py), unchanged, over the reader view.
    from versioned_items.search import query as q

    latest, history = app_indexes
    work = q.Work()
    tree = q.bound_expansions(q.parse("rep* AND NOT meeting", latest.schema), latest.reader(), work)
    assert work.terms_expanded == 2  # repair, report
    assert _paths(latest, tree) == ["docs/repair.txt", "docs/report.txt"]
    assert _paths(latest, q.parse("status:draft", latest.schema)) == ["docs/report.txt"]  # an attribute
    assert _paths(latest, q.parse("status:final", latest.schema)) == []
    assert _paths(history, q.parse("status:fin*", history.schema)) == ["docs/report.txt"]
    assert _paths(latest, q.parse('"quarterly report"', latest.schema)) == ["docs/report.txt"]


@pytest.mark.django_db
def test_the_apps_expansion_bound_holds_on_the_reader_view(app_indexes, settings):
    from versioned_items.search import query as q

    latest, _ = app_indexes
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_MAX_EXPANSION": 1}
    with pytest.raises(InvalidQuery, match="matches more than 1 words"):
        q.bound_expansions(q.parse("rep*", latest.schema), latest.reader(), q.Work())


@pytest.mark.django_db
def test_the_apps_spelling_suggestion_runs_on_the_reader_view(app_indexes):
    from versioned_items.search import query as q

    latest, _ = app_indexes
    assert q.suggest(latest.reader(), latest.schema, "quartrly reprt") == "quarterly report"


@pytest.mark.django_db
def test_an_as_of_wrapper_compiles_through_a_handler(app_indexes):
    # How the app's ValidAt (mtime < T <= valid_until) compiles: two ranges on fast columns.
    from whoosh.util.times import datetime_to_long

    from versioned_items.search import query as q
    from versioned_items.search.backends.tantivy_compile import must

    _, history = app_indexes
    serial = api.versions("docs/report.txt").order_by("serial").first().serial  # the first draft
    first = history.stored_documents([f"versioned_items.version.{serial}"])[
        f"versioned_items.version.{serial}"
    ]

    def valid_at(compiler, node):
        at = datetime_to_long(node.moment)
        Q, FT = tantivy.Query, tantivy.FieldType
        return must(
            compiler.compile(node.child),
            Q.range_query(history.tantivy_schema, "mtime", FT.Integer, None, at, include_upper=False),
            Q.range_query(history.tantivy_schema, "valid_until", FT.Integer, at, None),
        )

    moment = first["valid_until"] - timedelta(microseconds=1)  # just before the second draft
    tree = q.whoosh_query(q.SearchRequest(query="quarterly", history=True, as_of=moment), history.schema)
    found = history.searcher().search(history.compile(tree, handlers={q.ValidAt: valid_at}), 10)
    assert [history.stored_fields(history.searcher().doc(a))["serial"] for _, a in found.hits] == [serial]


@pytest.mark.django_db
def test_stored_texts_find_by_serial_and_content(app_indexes):
    _, history = app_indexes
    serial = api.versions("docs/report.txt").order_by("serial").first().serial  # the first draft
    by_serial, by_key = history.stored_texts([serial], [("nope", "text/plain")])
    assert by_serial == {serial: ("quarterly report", "ok")}
    assert by_key == {}
    notes_serial = api.lookup("docs/notes.md").serial
    (notes,) = history.stored_documents([f"versioned_items.version.{notes_serial}"]).values()
    checksum = notes["checksum"]
    _, by_key = history.stored_texts([], [(checksum, "text/markdown")])
    assert by_key == {(checksum, "text/markdown"): ("meeting notes about the report", "ok")}


def _paths(backend, tree) -> list[str]:
    searcher = backend.searcher()
    found = searcher.search(backend.compile(tree, searcher), 10).hits
    return sorted(backend.stored_fields(searcher.doc(address))["path_exact"] for _, address in found)


def test_an_index_recreated_by_another_backend_is_reopened(filled, connect, tmp_path):
    assert sqs().count() == 5
    import shutil

    shutil.rmtree(tmp_path / OTHER)  # as a rebuild in another process: a new index in the same folder
    other = engine.TantivySearchBackend(OTHER, PATH=str(tmp_path / OTHER))
    other.ensure_index()
    other.update(PeopleIndex(), people(["zoe"]))
    assert names(sqs()) == ["zoe"]


def test_the_benchmark_scenario_skips_without_tantivy(settings):
    from benchmarks import engines
    from benchmarks.report import Result
    from benchmarks.scenarios import tantivy as scenario

    settings.TANTIVY = False  # what benchmarks/settings.py sets when tantivy does not import
    result = Result("tantivy", "sqlite")
    scenario.run(SimpleNamespace(), result)
    assert result.notes == [engines.skipped_note()]
    assert "pip install 'versioned-items[tantivy]'" in result.notes[0]
    assert result.tables == [] and result.targets == []


@pytest.mark.django_db
def test_the_apps_search_on_tantivy_with_more_readable_paths_than_whoosh_writes_as_terms(
    app_on_tantivy, django_user_model, settings, monkeypatch
):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "DEFAULT_ACCESS": ""}
    from versioned_items.search import query as q

    monkeypatch.setattr(q, "READABLE_TERMS", 1)
    for side in indexing.sides():
        side.backend.ensure_index()
    for i in range(6):
        api.put(f"f{i}/doc.txt", b"common plan")
    indexing.wait_for_index()
    reader = django_user_model.objects.create_user("reader")
    for i in range(0, 6, 2):
        api.grant(f"f{i}", user=reader)
    page = search("common", user=reader, sort="path", suggest=True)
    assert [h.path for h in page] == ["f0/doc.txt", "f2/doc.txt", "f4/doc.txt"]
    assert search("comon", user=reader, suggest=True).suggestion == "common"
