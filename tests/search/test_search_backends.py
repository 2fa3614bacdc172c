"""The app's Whoosh engine: schema, batched writes, waiting writers, reused searchers, swap."""

import os
import shutil
import threading
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from haystack import connections, indexes
from haystack.exceptions import SkipDocument
from haystack.query import SearchQuerySet
from haystack.utils.loading import UnifiedIndex
from whoosh.filedb.filestore import FileStorage
from whoosh.writing import SegmentWriter

from versioned_items import api
from versioned_items.exceptions import IndexUnavailable
from versioned_items.models import Node
from versioned_items.search import indexing
from versioned_items.search.backends import whoosh
from versioned_items.search.search_indexes import LatestIndex

from ..search_fixtures import found, indexed

pytestmark = [pytest.mark.django_db, pytest.mark.whoosh_only]  # the Whoosh engine, its searcher and reader


@pytest.fixture
def backend(search_index):
    backend = indexing.latest_side().backend
    backend.setup()
    return backend


def docs(n, text="word"):
    return [
        {"id": f"t.doc.{i}", "django_ct": "t.doc", "django_id": str(i), "content": f"{text} {i}"}
        for i in range(n)
    ]


def test_schema_fits_the_fields(backend):
    schema = backend.schema
    assert not schema["text"].spelling  # Haystack would turn it on
    assert all(schema[name].column_type for name in ("mtime", "size", "path_exact", "muser", "cluster"))
    assert isinstance(schema["ancestors"].analyzer, whoosh.SeparatorTokenizer)
    assert [t.text for t in schema["content_type"].analyzer("Text/HTML; charset=x")] == ["text/html", "text"]
    assert [t.text for t in schema["path"].analyzer("docs/Q1-report_v2.txt")] == [
        "docs",
        "q1",
        "report",
        "v2",
        "txt",
    ]


def test_spelling_only_on_request(search_index):
    connections.connections_info["vi_latest"]["INCLUDE_SPELLING"] = True
    try:
        connections.reload("vi_latest")
        spelled = connections["vi_latest"].get_backend()
        spelled.setup()
        assert spelled.schema["text"].spelling
    finally:
        del connections.connections_info["vi_latest"]["INCLUDE_SPELLING"]
        connections.reload("vi_latest")


def test_a_batch_opens_one_searcher_and_replaces_old_documents(backend, monkeypatch):
    backend.write_documents(docs(30, "old"))
    opened = []
    real = SegmentWriter.searcher
    monkeypatch.setattr(SegmentWriter, "searcher", lambda self, **kw: opened.append(1) or real(self, **kw))
    backend.write_documents(docs(30, "new"), delete_ids=["t.doc.0"])
    assert opened == [1]
    searcher = backend.searcher()
    assert searcher.doc_count() == 30  # replaced, not duplicated
    assert all(f["content"].startswith("new") for f in searcher.all_stored_fields())


def test_one_commit_per_batch(backend, monkeypatch):
    commits = []
    real = SegmentWriter.commit
    monkeypatch.setattr(
        SegmentWriter, "commit", lambda self, *a, **k: commits.append(1) or real(self, *a, **k)
    )
    backend.write_documents(docs(50))
    assert commits == [1]


def _hold_lock(backend, seconds):
    writer = backend.index.writer()
    timer = threading.Timer(seconds, writer.cancel)
    timer.start()
    return timer


def test_writers_wait_for_the_lock_instead_of_failing(backend):
    backend.write_documents(docs(3))
    timer = _hold_lock(backend, 0.3)
    backend.remove("t.doc.1")  # Haystack's own backend would raise or drop it here
    timer.join()
    assert backend.searcher().doc_count() == 2


def test_a_remove_that_cannot_get_the_lock_raises(backend, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_LOCK_TIMEOUT": 0.1}
    backend.write_documents(docs(3))
    holder = backend.index.writer()  # another writer holds the lock until told otherwise
    try:
        with pytest.raises(IndexUnavailable, match="locked by another writer"):
            backend.remove("t.doc.1")
    finally:
        holder.cancel()
    assert backend.searcher().doc_count() == 3


def test_the_searcher_is_reused_until_the_index_changes(backend):
    backend.write_documents(docs(2))
    first = backend.searcher()
    assert backend.searcher() is first
    backend.write_documents(docs(3))
    second = backend.searcher()
    assert second is not first and second.doc_count() == 3
    assert backend.searcher() is second


def test_searchqueryset_works_without_the_registered_models_query(backend, monkeypatch):
    api.put("docs/a.txt", b"haystack words")
    indexed()
    monkeypatch.setattr(
        whoosh.WhooshSearchBackend, "build_models_list", lambda self: pytest.fail("registered-models query")
    )
    results = SearchQuerySet(using="vi_latest").auto_query("haystack")
    assert [r.path_exact for r in results] == ["docs/a.txt"]


def test_haystack_index_api_writes_through_the_backend(backend):
    node = Node.objects.get(pk=api.put("docs/a.txt", b"direct words").node_id)
    LatestIndex().update_object(node)
    assert found("direct") == ["docs/a.txt"]
    LatestIndex().remove_object(node)
    assert found("direct") == []


def test_swap_in_replaces_the_index_atomically(backend, tmp_path):
    backend.write_documents(docs(5, "old"))
    before = backend.searcher()
    folder = str(tmp_path / "new")
    fresh = backend.create_index_in(folder)
    writer = backend.writer(fresh)
    for doc in docs(2, "fresh"):
        writer.add_document(**doc)
    writer.commit()
    backend.swap_in(folder)
    assert before.doc_count() == 5  # an open searcher still reads the old generation
    after = backend.searcher()
    assert after.doc_count() == 2
    assert all("fresh" in f["content"] for f in after.all_stored_fields())
    assert not (tmp_path / "new").exists()
    backend.write_documents(docs(1, "later"))  # the swapped index takes writes
    assert backend.searcher().doc_count() == 2


def test_clear(backend):
    backend.write_documents(docs(4))
    backend.clear()
    assert backend.searcher().doc_count() == 0


def test_stored_texts_find_by_serial_and_content(search_index):
    v1 = api.put("docs/a.txt", b"reusable text")
    indexed()
    history = indexing.history_side().backend
    by_serial, by_key = history.stored_texts(
        [v1.serial], [(v1.checksum, "text/plain"), ("nope", "text/plain")]
    )
    assert by_serial == {v1.serial: ("reusable text", "ok")}
    assert by_key == {(v1.checksum, "text/plain"): ("reusable text", "ok")}


# --- drop-in for Haystack's engine: another connection, an index of another model ---

STOCK = "haystack.backends.whoosh_backend.WhooshEngine"
OTHER = "other"


class PersonIndex(indexes.SearchIndex, indexes.Indexable):
    """An ordinary Haystack index, as a site's own: a document CharField, numbers, a date."""

    text = indexes.CharField(document=True, model_attr="username")
    rank = indexes.IntegerField(model_attr="id")
    hidden = indexes.IntegerField(model_attr="id", indexed=False)
    joined = indexes.DateTimeField(model_attr="date_joined")

    def get_model(self):
        return User

    def prepare_text(self, obj):
        if obj.username.startswith("skip"):
            raise SkipDocument
        return obj.username


class NicknameIndex(PersonIndex):
    nickname = indexes.CharField(model_attr="first_name")


def people(*names):
    joined = datetime(2024, 1, 1)  # naive: Haystack's engine cannot index aware datetimes
    return [
        User(id=i, username=name, first_name=f"nick{i}", date_joined=joined + timedelta(days=i))
        for i, name in enumerate(names, start=1)
    ]


@pytest.fixture
def other_connection(tmp_path):
    """``other_connection(engine=..., **options)``: the backend of connection ``other`` (a Whoosh
    folder under tmp_path) holding PersonIndex only; call again to switch engine or options."""

    def connect(engine=whoosh.__name__ + ".WhooshEngine", index=PersonIndex, **options):
        connections.connections_info[OTHER] = {"ENGINE": engine, "PATH": str(tmp_path / OTHER), **options}
        connections.reload(OTHER)
        unified = UnifiedIndex()
        unified.build(indexes=[index()])
        connections[OTHER]._index = unified
        return connections[OTHER].get_backend()

    yield connect
    connections.connections_info.pop(OTHER, None)
    connections.thread_local.connections.pop(OTHER, None)


def ids_of(results) -> list[str]:
    return sorted(r.pk for r in results)


def test_a_fresh_backend_serves_searchqueryset_first(backend):
    # Haystack's own search path used to recurse into the searcher wrapper until the app's
    # search() had opened a searcher in the process.
    api.put("docs/a.txt", b"haystack words")
    indexed()
    connections.reload("vi_latest")
    assert [r.path_exact for r in SearchQuerySet(using="vi_latest").auto_query("haystack")] == ["docs/a.txt"]
    connections.reload("vi_latest")
    assert SearchQuerySet(using="vi_latest").auto_query("haystack").count() == 1


def test_spelling_with_an_ordinary_document_field(other_connection):
    backend = other_connection(INCLUDE_SPELLING=True)
    backend.update(PersonIndex(), people("alice", "bob"))
    assert backend.schema["text"].spelling
    assert backend.search("alice", spelling_query="alise")["spelling_suggestion"] == "alice"


def test_other_connections_create_a_missing_index_the_apps_do_not(other_connection, search_index):
    backend = other_connection()
    backend.setup()  # as rebuild_index and clear_index do on a new connection
    assert backend.searcher().doc_count() == 0
    shutil.rmtree(search_index / "vi_latest")
    connections.reload("vi_latest")
    with pytest.raises(IndexUnavailable, match="does not exist"):
        connections["vi_latest"].get_backend().setup()
    assert not (search_index / "vi_latest").exists()


@pytest.mark.parametrize("alias", ["vi_latest", OTHER])
def test_a_damaged_index_is_never_replaced(other_connection, search_index, alias):
    def fresh_backend():
        return other_connection() if alias == OTHER else connections.reload(alias).get_backend()

    folder = fresh_backend().path
    fresh_backend().setup()
    (toc,) = [f for f in os.listdir(folder) if f.endswith(".toc")]
    with open(os.path.join(folder, toc), "wb") as damaged:
        damaged.write(b"not a table of contents")
    with pytest.raises(IndexUnavailable, match="cannot be read"):
        fresh_backend().setup()
    assert os.listdir(folder) == [toc]  # nothing created in its place


def test_delete_index_leaves_the_backend_usable(backend):
    backend.write_documents(docs(3))
    backend.delete_index()
    assert backend.searcher().doc_count() == 0
    backend.write_documents(docs(2, "again"))
    assert backend.searcher().doc_count() == 2
    shutil.rmtree(backend.path)  # deleted behind its back: delete_index makes a new one
    backend.delete_index()
    backend.write_documents(docs(1))
    assert backend.searcher().doc_count() == 1


def test_skip_document_skips_that_object_only(other_connection):
    backend = other_connection()
    backend.update(PersonIndex(), people("alice", "skip-me", "carol"))
    assert ids_of(SearchQuerySet(using=OTHER).all()) == ["1", "3"]


def test_an_index_built_by_the_stock_engine_answers_the_same(other_connection):
    queries = {
        "rank": lambda sqs: sqs.filter(rank=2),
        "range": lambda sqs: sqs.filter(rank__gte=2),
        "date": lambda sqs: sqs.filter(joined__gt=datetime(2024, 1, 2, 12)),
        "text": lambda sqs: sqs.auto_query("bob"),
    }
    other_connection(engine=STOCK).update(PersonIndex(), people("alice", "bob", "carol"))
    stock = {name: ids_of(query(SearchQuerySet(using=OTHER))) for name, query in queries.items()}
    stock_schema = connections[OTHER].get_backend().schema
    ours = other_connection()
    assert {name: ids_of(query(SearchQuerySet(using=OTHER))) for name, query in queries.items()} == stock
    assert stock == {"rank": ["2"], "range": ["2", "3"], "date": ["2", "3"], "text": ["2"]}
    for name in ("rank", "hidden", "joined"):
        assert type(ours.schema[name]) is type(stock_schema[name])
        assert vars(ours.schema[name]).get("bits") == vars(stock_schema[name]).get("bits")


def test_the_schema_follows_the_haystack_indexes(other_connection):
    backend = other_connection()
    backend.update(PersonIndex(), people("alice"))
    assert "nickname" not in backend.schema
    unified = UnifiedIndex()
    unified.build(indexes=[NicknameIndex()])
    connections[OTHER]._index = unified  # a new index class: no setup() call in between
    backend.update(NicknameIndex(), people("alice", "bob"))
    assert "nickname" in backend.schema
    assert ids_of(SearchQuerySet(using=OTHER).filter(nickname="nick2")) == ["2"]


def test_an_index_recreated_at_the_same_generation_is_not_served_from_the_old_searcher(backend):
    backend.write_documents(docs(3, "old"))
    generation = backend.searcher().reader().generation()
    # Another process re-creates the index in place and writes as many commits.
    fresh = FileStorage(backend.path).create_index(backend.schema)
    for _ in range(generation):
        writer = fresh.writer()
        writer.add_document(**docs(1, "new")[0])
        writer.commit()
    searcher = backend.searcher()
    assert searcher.reader().generation() == generation
    assert {f["content"] for f in searcher.all_stored_fields()} == {"new 0"}


def _locked(backend):
    """A writer holding the index's lock (cancel it to release the lock)."""
    return backend.index.writer()


def test_silently_fail_is_honoured_on_other_connections(other_connection, settings, caplog):
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "SEARCH_LOCK_TIMEOUT": 0.05}
    backend = other_connection()
    backend.update(PersonIndex(), people("alice"))
    holder = _locked(backend)
    try:
        backend.update(PersonIndex(), people("alice", "bob"))  # logged, as Haystack does
        backend.clear()
        assert "Failed to update" in caplog.text and "Failed to clear" in caplog.text
        with pytest.raises(IndexUnavailable):
            backend.remove("auth.user.1")  # removes always raise: a lost one is never retried
        strict = other_connection(SILENTLY_FAIL=False)
        with pytest.raises(IndexUnavailable):
            strict.update(PersonIndex(), people("bob"))
    finally:
        holder.cancel()
    assert ids_of(SearchQuerySet(using=OTHER).all()) == ["1"]


def test_the_apps_connections_never_fail_writes_silently(backend, settings):
    node = Node.objects.get(pk=api.put("docs/a.txt", b"words").node_id)
    indexed()
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "SEARCH_LOCK_TIMEOUT": 0.05}
    assert backend.silently_fail  # Haystack's default, not set in the test settings
    holder = _locked(backend)
    try:
        with pytest.raises(IndexUnavailable):
            backend.update(LatestIndex(), [node])
        with pytest.raises(IndexUnavailable):
            backend.clear()
    finally:
        holder.cancel()
