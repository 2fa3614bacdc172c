"""The app's Whoosh engine: schema, batched writes, waiting writers, reused searchers, swap."""

import threading

import pytest
from haystack.query import SearchQuerySet
from whoosh.writing import SegmentWriter

from versioned_items import api
from versioned_items.exceptions import IndexUnavailable
from versioned_items.models import Node
from versioned_items.search import backends, indexing
from versioned_items.search.search_indexes import LatestIndex

from .search_fixtures import found, indexed

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend(search_index):
    backend = indexing.latest_side().backend
    backend.setup()
    return backend


def docs(n, text="word"):
    return [{"id": f"t.doc.{i}", "django_ct": "t.doc", "django_id": str(i), "content": f"{text} {i}"} for i in range(n)]


def test_schema_fits_the_fields(backend):
    schema = backend.schema
    assert not schema["text"].spelling  # Haystack would turn it on
    assert all(schema[name].column_type for name in ("mtime", "size", "path_exact", "muser", "cluster"))
    assert isinstance(schema["ancestors"].analyzer, backends.SeparatorTokenizer)
    assert [t.text for t in schema["content_type"].analyzer("Text/HTML; charset=x")] == ["text/html", "text"]
    assert [t.text for t in schema["path"].analyzer("docs/Q1-report_v2.txt")] == ["docs", "q1", "report", "v2", "txt"]


def test_spelling_only_on_request(search_index):
    from haystack import connections

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
    monkeypatch.setattr(SegmentWriter, "commit", lambda self, *a, **k: commits.append(1) or real(self, *a, **k))
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
    monkeypatch.setattr(backends.WhooshSearchBackend, "build_models_list",
                        lambda self: pytest.fail("registered-models query"))
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
    by_serial, by_key = history.stored_texts([v1.serial], [(v1.checksum, "text/plain"), ("nope", "text/plain")])
    assert by_serial == {v1.serial: ("reusable text", "ok")}
    assert by_key == {(v1.checksum, "text/plain"): ("reusable text", "ok")}
