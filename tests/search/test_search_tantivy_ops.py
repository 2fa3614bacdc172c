"""The index operations on the tantivy engine, as on Whoosh: the indexes created after migrate,
the rebuild into a temporary folder with its atomic swap and replay, the intelligent update,
the check, dump, optimize, IndexUnavailable; and the system checks of tantivy connections.

Skipped as a whole where tantivy is not installed (it is an optional extra).
"""

import json
import os
import sys
import threading
from io import StringIO

import pytest

pytest.importorskip("tantivy")

from django.core.management import CommandError, call_command  # noqa: E402
from haystack import connections  # noqa: E402

from versioned_items import api  # noqa: E402
from versioned_items.exceptions import IndexUnavailable  # noqa: E402
from versioned_items.search import checks, indexing, maintenance  # noqa: E402
from versioned_items.search.backends.tantivy import MARKER, TantivySearchBackend  # noqa: E402
from versioned_items.search.models import IndexChange  # noqa: E402

from ..search_fixtures import ALIASES, assert_in_step, found, history_serials, indexed, latest_paths  # noqa: E402

ENGINE = checks.TANTIVY_ENGINE


def ids(messages):
    return [m.id for m in messages]


def sample_store():
    v1 = api.put("docs/a.txt", b"alpha", user="ann", attributes={"k": "v"})
    api.put("docs/a.txt", b"alpha two", user="bob")
    api.put("docs/b.html", b"<p>beta</p>", content_type="text/html")
    api.put("docs/c.txt", b"gamma")
    api.delete("docs/c.txt")
    return v1


def marker_inode(folder) -> int:
    return os.stat(folder / MARKER).st_ino


# --- the app's engine ------------------------------------------------------------------------


def test_tantivy_is_an_app_engine(on_tantivy):
    for side in indexing.sides():
        assert isinstance(side.backend, TantivySearchBackend)
        assert side.app_engine


@pytest.mark.django_db
def test_create_indexes_creates_both(on_tantivy):
    for side in indexing.sides():
        with pytest.raises(IndexUnavailable, match="does not exist"):
            indexing.document_count(side)
    indexing.create_indexes()
    assert [indexing.document_count(side) for side in indexing.sides()] == [0, 0]
    for alias in ALIASES:
        assert (on_tantivy / alias / MARKER).exists()


@pytest.mark.django_db
def test_migrate_creates_the_indexes(on_tantivy):
    call_command("migrate", verbosity=0)
    assert [indexing.document_count(side) for side in indexing.sides()] == [0, 0]
    assert latest_paths() == []


@pytest.mark.django_db
def test_create_indexes_keeps_an_existing_index(tantivy_index):
    api.put("docs/a.txt", b"alpha")
    indexed()
    inode = marker_inode(tantivy_index / "vi_latest")
    indexing.create_indexes()
    assert marker_inode(tantivy_index / "vi_latest") == inode
    assert found("alpha") == ["docs/a.txt"]


@pytest.mark.django_db
def test_writes_reuse_texts_the_history_index_holds(tantivy_index, monkeypatch):
    v1 = api.put("docs/a.txt", b"reusable text")
    indexed()
    from versioned_items.search import documents

    def no_extraction(*args, **kwargs):
        raise AssertionError("the text was extracted again")

    monkeypatch.setattr(documents, "extract_text", no_extraction)
    api.copy(v1.serial, "docs/b.txt")  # same checksum and type: the indexed text is reused
    api.set_attributes(v1.serial, {"k": "v"})  # same serial: reused too
    assert indexed()[0] == ["docs/a.txt", "docs/b.txt"]
    assert sorted(found("reusable")) == ["docs/a.txt", "docs/b.txt"]
    assert_in_step()


# --- rebuild ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rebuild_builds_both_indexes_and_swaps_them_in(tantivy_index):
    sample_store()
    indexed()
    inodes = {alias: marker_inode(tantivy_index / alias) for alias in ALIASES}
    before = indexing.latest_side().backend.searcher()
    IndexChange.objects.all().delete()
    report = indexing.rebuild(batch_size=2)
    assert (report.latest, report.history) == (2, 5)
    for alias in ALIASES:
        assert marker_inode(tantivy_index / alias) != inodes[alias]  # another index at PATH
        assert not (tantivy_index / f"{alias}.rebuild").exists()
    assert before.num_docs == 2  # a searcher opened before still reads the old index
    assert found("beta") == ["docs/b.html"]
    assert_in_step()


@pytest.mark.django_db
def test_rebuild_keeps_serving_searches_and_replays_writes_made_meanwhile(tantivy_index, monkeypatch):
    sample_store()
    indexed()
    real = maintenance._version_batches
    state = {}

    def batches_with_a_write_in_between(batch_size):
        for item in real(batch_size):
            yield item
            if not state:
                # The live index answers and takes writes while the rebuild reads the database.
                assert found("beta") == ["docs/b.html"]
                state["v"] = api.put("docs/late.txt", b"latecomer")
                indexing.wait_for_index()
                assert found("latecomer") == ["docs/late.txt"]
                assert IndexChange.objects.filter(applied=True).count() == 2

    monkeypatch.setattr(maintenance, "_version_batches", batches_with_a_write_in_between)
    report = indexing.rebuild(batch_size=2)
    assert report.replayed == 2
    assert found("latecomer") == ["docs/late.txt"]
    assert_in_step()


@pytest.mark.django_db
def test_searches_in_another_thread_never_fail_during_rebuilds(tantivy_index):
    sample_store()
    indexed()
    errors, counts, stop = [], set(), threading.Event()

    def search_until_stopped():
        # Its own Haystack connection (they are per thread), so its own backend and reader.
        backend = connections["vi_latest"].get_backend()
        try:
            while not stop.is_set():
                counts.add(backend.search("*")["hits"])
        except Exception as error:  # reported below
            errors.append(error)

    searcher = threading.Thread(target=search_until_stopped)
    searcher.start()
    try:
        for _ in range(5):
            indexing.rebuild()
    finally:
        stop.set()
        searcher.join(30)
    assert errors == []
    assert counts == {2}


@pytest.mark.django_db
def test_rebuild_without_the_atomic_exchange_renames_twice(tantivy_index, monkeypatch):
    from versioned_items.search.backends import tantivy as engine

    sample_store()
    indexed()
    monkeypatch.setattr(engine, "_exchange", lambda first, second: False)  # not Linux
    indexing.rebuild()
    assert sorted(n for n in os.listdir(tantivy_index) if n.startswith("vi_")) == ["vi_history", "vi_latest"]
    assert found("beta") == ["docs/b.html"]
    assert_in_step()


def move_aside(folder) -> None:
    """What a swap by two renames killed between them leaves: the live index in ``PATH.old``,
    nothing at ``PATH``."""
    os.rename(folder, f"{folder}.old")


@pytest.mark.django_db
def test_a_swap_by_renames_killed_between_them_is_undone_by_the_next_search(tantivy_index):
    sample_store()
    indexed()
    move_aside(tantivy_index / "vi_latest")
    assert found("beta") == ["docs/b.html"]  # a backend with the index open puts it back
    move_aside(tantivy_index / "vi_latest")
    connections.reload("vi_latest")
    assert found("beta") == ["docs/b.html"]  # so does one that opens it
    assert not (tantivy_index / "vi_latest.old").exists()
    assert_in_step()


@pytest.mark.django_db
def test_a_swap_by_renames_killed_between_them_is_undone_by_the_next_write(tantivy_index):
    v1 = sample_store()
    indexed()
    move_aside(tantivy_index / "vi_latest")
    indexing.latest_side().backend.remove(f"versioned_items.node.{v1.node_id}")  # a writer, no search
    assert not (tantivy_index / "vi_latest.old").exists()
    assert found("beta") == ["docs/b.html"]
    assert found("alpha") == []


@pytest.mark.django_db
def test_an_index_moved_aside_by_a_running_swap_is_left_to_it(tantivy_index):
    sample_store()
    indexed()
    move_aside(tantivy_index / "vi_latest")
    backend = indexing.latest_side().backend
    with backend._writer_lock(str(tantivy_index / "vi_latest.old")):  # the swap holds it
        with pytest.raises(IndexUnavailable, match="no longer exists"):
            found("beta")
    assert found("beta") == ["docs/b.html"]


@pytest.mark.django_db
@pytest.mark.parametrize("killed", ["between", "after"])
def test_rebuilds_by_renames_after_one_killed_between_or_after_its_renames(
    killed, tantivy_index, monkeypatch
):
    import shutil

    from versioned_items.search.backends import tantivy as engine

    sample_store()
    indexed()
    monkeypatch.setattr(engine, "_exchange", lambda first, second: False)  # not Linux
    live = tantivy_index / "vi_history"
    if killed == "between":
        move_aside(live)
    else:  # the old index not yet deleted
        shutil.copytree(live, f"{live}.old")
    for _ in range(2):
        indexing.rebuild()
    assert sorted(n for n in os.listdir(tantivy_index) if n.startswith("vi_")) == ["vi_history", "vi_latest"]
    assert len(history_serials()) == 5
    assert_in_step()


@pytest.mark.django_db
def test_rebuild_repairs_a_missing_and_a_damaged_index(tantivy_index):
    import shutil

    sample_store()
    indexed()
    shutil.rmtree(tantivy_index / "vi_latest")
    (tantivy_index / "vi_history" / "meta.json").write_text("{not json")
    connections.reload("vi_history")
    indexing.rebuild()
    assert (latest_paths(), len(history_serials())) == (["docs/a.txt", "docs/b.html"], 5)
    assert_in_step()


@pytest.mark.django_db
def test_a_rebuild_that_fails_leaves_the_live_indexes(tantivy_index, monkeypatch):
    sample_store()
    indexed()
    inode = marker_inode(tantivy_index / "vi_latest")

    def failing(batch_size):
        raise RuntimeError("database gone")
        yield  # a generator, as the real one

    monkeypatch.setattr(maintenance, "_version_batches", failing)
    with pytest.raises(RuntimeError, match="database gone"):
        indexing.rebuild()
    assert marker_inode(tantivy_index / "vi_latest") == inode
    assert found("beta") == ["docs/b.html"]
    monkeypatch.undo()
    indexing.rebuild()  # removes the leftovers of the failed one
    assert not (tantivy_index / "vi_latest.rebuild").exists()
    assert_in_step()


@pytest.mark.django_db
def test_swap_waits_for_the_writer_lock(tantivy_index, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_LOCK_TIMEOUT": 0.2}
    sample_store()
    indexed()
    backend = indexing.latest_side().backend
    writer = backend.writer()  # another writer holds the live index
    try:
        with pytest.raises(IndexUnavailable, match="locked by another writer"):
            indexing.rebuild()
    finally:
        writer.rollback()
        del writer
    assert found("beta") == ["docs/b.html"]  # the live index is unchanged


@pytest.mark.django_db
def test_vi_rebuild_index_on_tantivy(tantivy_index):
    sample_store()
    indexed()
    out = StringIO()
    call_command("vi_rebuild_index", "--batch-size", "2", stdout=out, stderr=StringIO())
    assert "latest: 2 documents, history: 5 documents" in out.getvalue()
    assert found("alpha") == ["docs/a.txt"]
    assert_in_step()


# --- the intelligent update, the check, dump and optimize ------------------------------------


@pytest.mark.django_db
def test_update_index_repairs_a_deleted_document(tantivy_index):
    v1 = sample_store()
    indexed()
    indexing.latest_side().backend.remove(f"versioned_items.node.{v1.node_id}")
    indexing.history_side().backend.remove(f"versioned_items.version.{v1.serial}")
    assert found("alpha") == []
    report = indexing.update_index()
    assert report.diff.latest.missing == {v1.node_id}
    assert report.diff.history.missing == {v1.serial}
    assert found("alpha") == ["docs/a.txt"]
    assert_in_step()


@pytest.mark.django_db
def test_check_reports_a_missing_and_an_extra_document(tantivy_index):
    v1 = sample_store()
    extra = api.put("docs/extra.txt", b"extra")
    indexed()
    indexing.history_side().backend.remove(f"versioned_items.version.{v1.serial}")
    IndexChange.objects.all().delete()
    api.remove_version(extra.serial)  # its outbox entries lost: its documents stay
    IndexChange.objects.all().delete()
    report = indexing.check()
    assert not report.ok
    assert report.diff.history.missing == {v1.serial}
    assert report.diff.history.stale == {extra.serial}
    assert report.diff.latest.stale == {extra.node_id}
    out = StringIO()
    with pytest.raises(CommandError, match="problems found"):
        call_command("vi_check", stdout=out, stderr=StringIO())
    assert f"[index-missing] history index: 1 documents missing: {v1.serial}" in out.getvalue()
    assert f"[index-stale] history index: 1 documents stale: {extra.serial}" in out.getvalue()


@pytest.mark.django_db
def test_dump_and_optimize(tantivy_index):
    sample_store()
    indexed()
    for i in range(3):
        api.put(f"docs/more{i}.txt", b"more")
        indexing.wait_for_index()
    indexing.optimize()
    docs = list(indexing.dump())
    assert [d["path_exact"] for d in docs] == [
        "docs/a.txt",
        "docs/b.html",
        "docs/more0.txt",
        "docs/more1.txt",
        "docs/more2.txt",
    ]
    history = list(indexing.dump(history=True))
    assert [d["serial"] for d in history] == sorted(d["serial"] for d in history)
    assert history[0]["content"] == "alpha"
    out = StringIO()
    call_command("vi_dump_index", "--history", "--json", stdout=out)
    assert [json.loads(line)["serial"] for line in out.getvalue().splitlines()] == [
        d["serial"] for d in history
    ]
    assert_in_step()


# --- an index that cannot be used ------------------------------------------------------------


@pytest.mark.django_db
def test_a_missing_index_is_unavailable(tantivy_index):
    import shutil

    from versioned_items.search.api import search

    api.put("docs/a.txt", b"alpha")
    indexed()
    shutil.rmtree(tantivy_index / "vi_latest")
    with pytest.raises(IndexUnavailable, match="no longer exists"):
        search("alpha")
    status = indexing.index_status()
    assert status.indexes[0].documents is None and "vi_latest" in status.indexes[0].problem
    assert status.indexes[1].documents == 1


@pytest.mark.django_db
def test_a_damaged_index_is_unavailable(tantivy_index):
    from versioned_items.search.api import search

    api.put("docs/a.txt", b"alpha")
    indexed()
    (tantivy_index / "vi_history" / "meta.json").write_text("{not json")
    connections.reload("vi_history")
    with pytest.raises(IndexUnavailable, match="cannot be read"):
        search("alpha", history=True)
    with pytest.raises(IndexUnavailable, match="cannot be read"):
        indexing.compare()


# --- system checks ---------------------------------------------------------------------------


def tantivy_connections(**options):
    return {alias: {"ENGINE": ENGINE, "PATH": f"/tmp/{alias}", **options} for alias in ALIASES}


def test_tantivy_connections_pass_the_checks(settings):
    settings.HAYSTACK_CONNECTIONS = tantivy_connections()
    assert checks.check_connections() + checks.check_connection_entries() == []


def test_one_connection_on_each_app_engine_passes(settings):
    settings.HAYSTACK_CONNECTIONS = {
        "vi_latest": {"ENGINE": checks.ENGINE, "PATH": "/tmp/vi_latest"},
        "vi_history": {"ENGINE": ENGINE, "PATH": "/tmp/vi_history"},
    }
    assert checks.check_connections() + checks.check_connection_entries() == []


def test_a_foreign_engine_still_warns(settings):
    settings.HAYSTACK_CONNECTIONS = {
        **tantivy_connections(),
        "vi_history": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"},
    }
    messages = checks.check_connections()
    assert ids(messages) == ["versioned_items_search.W001"]
    assert ENGINE in messages[0].hint


def test_a_tantivy_connection_without_path(settings):
    settings.HAYSTACK_CONNECTIONS = {**tantivy_connections(), "vi_latest": {"ENGINE": ENGINE}}
    messages = checks.check_connection_entries()
    assert ids(messages) == ["versioned_items_search.E006"]
    assert "tantivy engine without a 'PATH'" in messages[0].msg
    assert "'tantivy'" in messages[0].hint


def test_a_shared_tantivy_folder(settings):
    settings.HAYSTACK_CONNECTIONS = tantivy_connections(PATH="/tmp/same")
    assert ids(checks.check_connections()) == ["versioned_items_search.E003"]


def test_a_tantivy_connection_without_tantivy_installed(settings, monkeypatch):
    settings.HAYSTACK_CONNECTIONS = tantivy_connections()
    monkeypatch.setitem(sys.modules, "tantivy", None)  # what `import tantivy` finds without it
    messages = checks.check_connection_entries()
    assert ids(messages) == ["versioned_items_search.E007"] * 2
    assert "tantivy is not installed" in messages[0].msg
    assert "versioned-items[tantivy]" in messages[0].hint
    assert checks.check_connections() == []  # reported once, by the entries check
