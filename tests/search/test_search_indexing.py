"""Keeping the indexes in step: every write path, promotion, rollback, the outbox and its
applier, rebuild, the intelligent update and the check."""

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from versioned_items import api
from versioned_items.exceptions import IndexUnavailable
from versioned_items.models import Cluster
from versioned_items.search import compare, documents, extractors, indexing, maintenance, outbox, sides
from versioned_items.search.models import IndexChange, MaintenanceRun
from versioned_items.search.search_indexes import OPEN_END

from ..search_fixtures import assert_in_step, child_env, found, history_docs, indexed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _index(search_index):
    return search_index


# --- every write path ------------------------------------------------------------------------


def test_put_indexes_latest_and_history():
    v1 = api.put("docs/a.txt", b"alpha words", user="ann")
    v2 = api.put("docs/a.txt", b"beta words", user="bob")
    assert indexed() == (["docs/a.txt"], [v1.serial, v2.serial])
    assert found("beta") == ["docs/a.txt"]
    assert found("alpha") == []
    docs = history_docs()
    assert docs[v1.serial]["cluster"] == Cluster.HISTORY
    assert docs[v1.serial]["valid_until"] == v2.mtime.replace(tzinfo=None)
    assert_in_step()


def test_delete_removes_latest_and_keeps_history():
    v1 = api.put("docs/a.txt", b"alpha")
    marker = api.delete("docs/a.txt")
    assert indexed() == ([], [v1.serial, marker.serial])
    assert history_docs()[marker.serial]["cluster"] == Cluster.DELETED
    assert_in_step()


def test_restore_makes_the_old_text_current_again():
    v1 = api.put("docs/a.txt", b"alpha")
    api.put("docs/a.txt", b"beta")
    api.delete("docs/a.txt")
    restored = api.restore(v1.serial)
    indexed()
    assert found("alpha") == ["docs/a.txt"]
    assert found("beta") == []
    assert history_docs()[restored.serial]["content"] == "alpha"
    assert_in_step()


def test_recluster_of_the_current_version_removes_it_from_latest():
    v1 = api.put("docs/a.txt", b"alpha")
    api.recluster(v1.serial, Cluster.DELETED)
    assert indexed() == ([], [v1.serial])
    assert history_docs()[v1.serial]["cluster"] == Cluster.DELETED
    api.recluster(v1.serial, Cluster.NORMAL)
    assert indexed() == (["docs/a.txt"], [v1.serial])
    assert_in_step()


def test_remove_version_promotes_the_previous_one():
    v1 = api.put("docs/a.txt", b"alpha")
    v2 = api.put("docs/a.txt", b"beta")
    indexed()
    api.remove_version(v2.serial)  # v1 (in HISTORY) becomes current and NORMAL again
    assert indexed() == (["docs/a.txt"], [v1.serial])
    assert found("alpha") == ["docs/a.txt"]
    assert history_docs()[v1.serial]["valid_until"] == OPEN_END.replace(tzinfo=None)  # open again
    assert_in_step()


def test_promotion_reuses_the_text_already_extracted(monkeypatch):
    api.put("docs/a.txt", b"alpha")
    v2 = api.put("docs/a.txt", b"beta")
    indexed()
    calls = []
    monkeypatch.setattr(
        documents, "extract_text", lambda source: calls.append(source) or extractors.Extraction("x", "ok")
    )
    api.remove_version(v2.serial)
    indexed()
    assert calls == []  # the latest document of v1 took its text from the history index
    assert found("alpha") == ["docs/a.txt"]


def test_remove_of_the_only_version_removes_both_documents():
    v1 = api.put("docs/a.txt", b"alpha")
    api.remove_version(v1.serial)
    assert indexed() == ([], [])
    assert_in_step()


def test_purge_removes_history_documents_and_extends_validity():
    v1 = api.put("docs/a.txt", b"one")
    v2 = api.put("docs/a.txt", b"two")
    v3 = api.put("docs/a.txt", b"three")
    indexed()
    api.purge("docs/a.txt", clusters=[Cluster.HISTORY], before=v2.mtime + timedelta(microseconds=1))
    assert indexed() == (["docs/a.txt"], [v3.serial])
    assert v1.serial not in history_docs()
    assert_in_step()


def test_purge_of_a_subtree():
    for name in "abc":
        api.put(f"tree/{name}", b"x")
        api.put(f"tree/{name}", b"y")
    api.purge("tree", clusters=[Cluster.HISTORY], subtree=True)
    latest, history = indexed()
    assert latest == ["tree/a", "tree/b", "tree/c"]
    assert len(history) == 3
    assert_in_step()


def test_move_rewrites_paths_in_both_indexes():
    api.put("old/a.txt", b"alpha")
    api.put("old/sub/b.txt", b"beta")
    api.put("old/sub/b.txt", b"beta two")
    api.move("old", "new/place")
    latest, history = indexed()
    assert latest == ["new/place/a.txt", "new/place/sub/b.txt"]
    assert {d["path_exact"] for d in history_docs().values()} == {"new/place/a.txt", "new/place/sub/b.txt"}
    assert found("beta", under="new/place") == ["new/place/sub/b.txt"]
    assert found("beta", under="old") == []
    assert_in_step()


def test_remove_node_removes_its_documents():
    api.put("gone/a.txt", b"alpha")
    api.delete("gone/a.txt")
    api.remove_node("gone/a.txt")
    assert indexed() == ([], [])
    assert_in_step()


def test_copy_indexes_the_new_path_without_extracting_again(monkeypatch):
    v1 = api.put("docs/a.txt", b"alpha")
    indexed()
    monkeypatch.setattr(documents, "extract_text", lambda s: pytest.fail("extracted again"))
    api.copy(v1.serial, "docs/b.txt")
    assert indexed()[0] == ["docs/a.txt", "docs/b.txt"]
    assert sorted(found("alpha")) == ["docs/a.txt", "docs/b.txt"]  # equal scores: any order


@pytest.mark.parametrize("change", ["set", "delete", "copy"])
def test_attribute_changes_reach_both_indexes(change):
    v1 = api.put("docs/a.txt", b"alpha", attributes={"color": "red"})
    indexed()
    if change == "set":
        api.set_attributes(v1.serial, {"color": "blue"})
        expected = ["docs/a.txt"], []
    elif change == "delete":
        api.delete_attributes(v1.serial, ["color"])
        expected = [], []
    else:
        other = api.put("docs/b.txt", b"x", attributes={"color": "blue"})
        api.copy_attributes(other.serial, v1.serial)
        expected = ["docs/a.txt", "docs/b.txt"], []
    indexed()
    assert found("color:blue") == expected[0]
    assert found("color:red") == expected[1]
    assert found("color:red", history=True) == expected[1]
    assert_in_step()


def test_attribute_change_of_a_history_version_leaves_latest_alone():
    v1 = api.put("docs/a.txt", b"alpha")
    api.put("docs/a.txt", b"beta")
    indexed()
    api.set_attributes(v1.serial, {"tag": "old"})
    indexed()
    assert found("tag:old", history=True) == ["docs/a.txt"]
    assert found("tag:old") == []
    assert_in_step()


def test_batch_of_writes_is_applied_in_one_round():
    with api.batch():
        for i in range(5):
            api.put(f"bulk/{i}.txt", f"number {i}".encode())
    assert indexing.wait_for_index() == 10  # five nodes, five versions
    assert_in_step()


# --- the outbox ------------------------------------------------------------------------------


def test_changes_wait_in_the_outbox_until_applied():
    api.put("docs/a.txt", b"alpha")
    assert IndexChange.objects.count() == 2
    assert found("alpha") == []
    indexing.wait_for_index()
    assert IndexChange.objects.count() == 0
    assert found("alpha") == ["docs/a.txt"]


def test_entries_are_idempotent_in_any_order_and_repeated():
    v1 = api.put("docs/a.txt", b"alpha")
    api.put("docs/a.txt", b"beta")
    # Replay the same entries again, reversed: the index still follows the database.
    IndexChange.objects.bulk_create(
        [
            IndexChange(kind=IndexChange.Kind.HISTORY, object_id=v1.serial),
            IndexChange(kind=IndexChange.Kind.LATEST, object_id=v1.node_id),
            IndexChange(kind=IndexChange.Kind.HISTORY, object_id=v1.serial),
        ]
    )
    indexed()
    assert found("beta") == ["docs/a.txt"]
    assert_in_step()


def test_rounds_are_split_at_the_cap(settings, monkeypatch):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_BATCH_SIZE": 3}
    monkeypatch.setattr(outbox, "MAX_ROUND_GROWTH", 1)
    work = _count_rounds(monkeypatch)
    for i in range(4):
        api.put(f"docs/{i}", b"x")
    assert indexing.wait_for_index() == 8
    # Rounds of 3 entries (a latest and a history entry per put): 3, 3 and the last 2.
    assert len(work["rounds"]) == 3
    assert_in_step()


def _count_rounds(monkeypatch) -> dict[str, list]:
    """Record each round's entries (reconcile) and each index commit (write), calling the real ones."""
    work: dict[str, list] = {"rounds": [], "commits": []}
    reconcile, write = outbox.reconcile, sides.write

    def counted_reconcile(node_ids=(), serials=()):
        work["rounds"].append(len(node_ids) + len(serials))
        return reconcile(node_ids, serials)

    def counted_write(side, objects, delete_pks=()):
        work["commits"].append(side.backend.connection_alias)
        return write(side, objects, delete_pks)

    monkeypatch.setattr(outbox, "reconcile", counted_reconcile)
    monkeypatch.setattr(sides, "write", counted_write)
    return work


def test_a_single_save_is_one_round_of_one_commit_per_index(settings, monkeypatch):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_BATCH_SIZE": 2}
    work = _count_rounds(monkeypatch)
    api.put("docs/one.txt", b"one")
    assert indexing.wait_for_index() == 2
    assert work["rounds"] == [2]
    assert len(work["commits"]) == 2  # latest and history


def test_a_backlog_is_applied_in_rounds_as_large_as_the_cap(settings, monkeypatch):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_BATCH_SIZE": 2}
    work = _count_rounds(monkeypatch)
    with api.batch():
        for i in range(40):
            api.put(f"bulk/{i}.txt", f"number {i}".encode())
    assert indexing.wait_for_index() == 80
    # 32 times the batch size: 2 rounds where fixed rounds of 2 took 40, doubling ones 6.
    assert work["rounds"] == [64, 16]
    assert len(work["commits"]) <= 2 * len(work["rounds"])  # a round of one side commits once
    assert_in_step()


def test_a_node_changed_throughout_a_backlog_is_written_once(settings, monkeypatch):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_BATCH_SIZE": 2}
    work = _count_rounds(monkeypatch)
    for i in range(10):
        api.put("docs/often.txt", f"edit {i}".encode())
    # Per put: the node, the new version, and the version it ends (its valid_until).
    assert indexing.wait_for_index() == 10 + 10 + 9
    # One round: the node once and its 10 versions once (doubling rounds wrote the node 4 times).
    assert work["rounds"] == [1 + 10]
    assert found("edit") == ["docs/often.txt"]
    assert_in_step()


def test_round_sizes_are_the_cap():
    sizes = indexing.round_sizes(500)
    assert [next(sizes) for _ in range(3)] == [16_000] * 3


def test_apply_costs_a_constant_number_of_queries(django_assert_max_num_queries):
    for i in range(30):
        api.put(f"q/{i}.txt", f"text {i}".encode(), attributes={"n": str(i)})
    # Read entries; nodes and their attributes; versions and their attributes; delete entries;
    # one more read to see the outbox is empty.
    with django_assert_max_num_queries(8):
        assert indexing.wait_for_index() == 60


def test_a_failing_extractor_does_not_stop_indexing(caplog):
    def broken(data, content_type):
        raise RuntimeError("boom")

    extractors.register("application/x-broken", broken)
    try:
        bad = api.put("docs/bad.bin", b"whatever", content_type="application/x-broken")
        api.put("docs/good.txt", b"fine words")
        indexed()
    finally:
        extractors.unregister("application/x-broken")
    assert found("bad") == ["docs/bad.bin"]
    assert found("fine") == ["docs/good.txt"]
    assert history_docs()[bad.serial]["text_status"] == extractors.FAILED
    assert "Text extraction failed" in caplog.text


def test_size_cap_truncates_and_records_it(settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "EXTRACT_MAX_CHARS": 10}
    v1 = api.put("docs/long.txt", b"short words then a faraway tail")
    indexed()
    doc = history_docs()[v1.serial]
    assert doc["text_status"] == extractors.TRUNCATED
    assert len(doc["content"]) == 10
    assert found("faraway") == []


def test_delete_marker_carries_the_deleted_text():
    api.put("docs/a.txt", b"recyclable words")
    api.delete("docs/a.txt")
    indexed()
    assert found("recyclable") == []
    assert found("recyclable", history=True, cluster=Cluster.DELETED) == ["docs/a.txt"]


# --- after commit ----------------------------------------------------------------------------


def test_sync_mode_applies_on_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        api.put("docs/a.txt", b"alpha")
    assert len(callbacks) == 1
    assert found("alpha") == ["docs/a.txt"]
    assert IndexChange.objects.count() == 0


def test_one_callback_per_transaction(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            api.put("docs/a.txt", b"alpha")
            api.put("docs/b.txt", b"beta")
            api.delete("docs/a.txt")
    assert len(callbacks) == 1
    assert found("beta") == ["docs/b.txt"]


def test_rolled_back_transaction_leaves_no_trace(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                api.put("docs/a.txt", b"ghost")
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    assert callbacks == []
    assert IndexChange.objects.count() == 0
    assert indexed() == ([], [])
    assert found("ghost", history=True) == []


def test_rolled_back_savepoint_keeps_the_outer_work(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            api.put("docs/kept.txt", b"kept")
            try:
                with transaction.atomic():
                    api.put("docs/ghost.txt", b"ghost")
                    raise RuntimeError("abort")
            except RuntimeError:
                pass
    assert found("kept OR ghost", history=True) == ["docs/kept.txt"]
    assert_in_step()


def test_sync_mode_failure_keeps_the_entries(monkeypatch, caplog, django_capture_on_commit_callbacks):
    def unavailable(*args, **kwargs):
        raise IndexUnavailable("index down")

    monkeypatch.setattr(outbox, "reconcile", unavailable)
    with django_capture_on_commit_callbacks(execute=True):
        api.put("docs/a.txt", b"alpha")  # the write itself succeeds
    assert IndexChange.objects.count() == 2
    assert "stay in the outbox" in caplog.text
    monkeypatch.undo()
    indexed()
    assert found("alpha") == ["docs/a.txt"]


@pytest.mark.django_db(transaction=True)
def test_background_applier_groups_commits(settings, monkeypatch):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_SYNC": False}
    rounds = []
    real = outbox.reconcile
    monkeypatch.setattr(outbox, "reconcile", lambda *a, **k: rounds.append(1) or real(*a, **k))
    for i in range(20):
        api.put(f"docs/{i}.txt", f"word{i}".encode())
    assert indexing.flush_background(30)
    indexing.wait_for_index()
    assert len(found("", page_size=100)) == 20
    assert len(rounds) < 20  # many commits shared a round
    assert_in_step()


@pytest.mark.django_db(transaction=True)
def test_entries_left_by_a_dead_process_are_applied_by_the_next_writer():
    # As if a process committed and died before its applier ran: entries but no round.
    with transaction.atomic():
        v1 = api.put("docs/orphan.txt", b"orphan")
        transaction.get_connection().run_on_commit.clear()
    assert IndexChange.objects.count() == 2
    api.put("docs/next.txt", b"next")  # the next writer's round drains everything
    assert IndexChange.objects.count() == 0
    assert found("orphan") == ["docs/orphan.txt"]
    assert v1.serial in history_docs()


def test_commit_hooks_run_inside_a_test_transaction_apply_in_place(
    settings, django_capture_on_commit_callbacks
):
    # The applier thread could not see this transaction's entries, and on SQLite would wait
    # for its write lock until the timeout.
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_SYNC": False}
    with django_capture_on_commit_callbacks(execute=True):
        api.put("docs/a.txt", b"alpha")
    assert found("alpha") == ["docs/a.txt"]
    assert IndexChange.objects.count() == 0
    assert outbox._applier._thread is None


# --- the applier and a busy SQLite database --------------------------------------------------


def _entries(count: int) -> list[int]:
    IndexChange.objects.bulk_create(
        [IndexChange(kind=IndexChange.Kind.LATEST, object_id=n) for n in range(count)]
    )
    return list(IndexChange.objects.values_list("id", flat=True))


def test_a_write_settles_the_entries_the_applier_could_not_delete(django_assert_num_queries):
    ids = _entries(2)
    outbox._unsettled.add(ids, keep=False)
    api.put("docs/a.txt", b"alpha")  # its transaction holds the write lock anyway
    assert not IndexChange.objects.filter(id__in=ids).exists()
    assert not outbox._unsettled
    with django_assert_num_queries(0):
        assert indexing.settle_applied()  # nothing left: not even a query


def test_a_write_that_rolls_back_leaves_them_to_be_applied_again():
    ids = _entries(2)
    outbox._unsettled.add(ids, keep=False)
    with pytest.raises(RuntimeError), transaction.atomic():
        api.put("docs/a.txt", b"alpha")
        raise RuntimeError("abort")
    assert IndexChange.objects.filter(id__in=ids).count() == 2  # idempotent: the next round applies them
    assert indexing.apply_pending() == 2


def test_entries_applied_while_a_rebuild_ran_are_marked_not_deleted():
    ids = _entries(2)
    outbox._unsettled.add(ids[:1], keep=True)
    outbox._unsettled.add(ids[1:], keep=False)
    assert indexing.settle_applied()
    assert list(IndexChange.objects.values_list("id", "applied")) == [(ids[0], True)]


@pytest.mark.django_db(transaction=True)
def test_the_applier_leaves_the_deletion_to_a_busy_sqlite_writer_quietly(settings, caplog):
    import sqlite3

    from django.db import connection

    from versioned_items.search import locks

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's single write lock")
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_SYNC": False}
    # Another connection (a writer's transaction) takes the write lock before the applier runs.
    writer = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    with locks.apply_lock():
        api.put("docs/a.txt", b"alpha")
        writer.execute("BEGIN IMMEDIATE")
    try:
        # The applier does not wait out the 30 s timeout: it applies, and leaves the deletion.
        assert _within(10, lambda: bool(outbox._unsettled))
        assert found("alpha") == ["docs/a.txt"]
        assert IndexChange.objects.count() == 2
        assert not indexing.flush_background(0.3)  # it keeps trying, quietly
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert indexing.flush_background(10)
    assert IndexChange.objects.count() == 0 and not outbox._unsettled
    assert [
        r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("versioned_items")
    ] == []
    assert "database is locked" not in caplog.text


def _within(seconds: float, condition) -> bool:
    """Whether ``condition()`` becomes true within ``seconds`` (polled)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_failing_applier_logs_once_until_it_works_again(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="versioned_items.search")
    applier = outbox._Applier()
    monkeypatch.setattr(
        outbox, "_apply_in_background", lambda: (_ for _ in ()).throw(IndexUnavailable("down"))
    )
    for _ in range(3):
        assert applier._round(0.0) == 0.0
    assert caplog.text.count("Applying index changes failed") == 1
    monkeypatch.setattr(outbox, "_apply_in_background", lambda: True)
    applier._round(0.0)
    assert "works again" in caplog.text


def test_the_applier_backs_off_while_the_database_is_busy(monkeypatch):
    applier = outbox._Applier()
    monkeypatch.setattr(outbox, "_apply_in_background", lambda: False)
    pauses = [applier._round(0.0)]
    for _ in range(6):
        pauses.append(applier._round(pauses[-1]))
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


# --- rebuild, update, check ------------------------------------------------------------------


def _sample_store():
    v1 = api.put("docs/a.txt", b"alpha", user="ann", attributes={"k": "v"})
    api.put("docs/a.txt", b"alpha two", user="bob")
    api.put("docs/b.html", b"<p>beta</p>", content_type="text/html")
    api.put("docs/c.txt", b"gamma")
    api.delete("docs/c.txt")
    return v1


def test_rebuild_builds_both_indexes_from_the_database():
    _sample_store()
    IndexChange.objects.all().delete()  # as if the index had never seen any of it
    report = indexing.rebuild(batch_size=2)
    assert (report.latest, report.history) == (2, 5)
    assert found("beta") == ["docs/b.html"]
    assert_in_step()


def test_rebuild_replaces_a_wrong_index_atomically(search_index):
    _sample_store()
    indexed()
    latest_dir = search_index / "vi_latest"
    before = set(os.listdir(latest_dir))
    indexing.rebuild()
    after = set(os.listdir(latest_dir))
    assert before != after  # new segments and table of contents
    assert not (search_index / "vi_latest.rebuild").exists()
    assert_in_step()


def test_rebuild_reports_progress():
    _sample_store()
    calls = []
    indexing.rebuild(batch_size=2, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_rebuild_replays_changes_made_while_it_runs(monkeypatch):
    _sample_store()
    indexed()
    real = maintenance._version_batches
    state = {}

    def batches_with_a_write_in_between(batch_size):
        for item in real(batch_size):
            yield item
            if not state:
                # A write (and its applier round) while the rebuild reads the database.
                state["v"] = api.put("docs/late.txt", b"latecomer")
                indexing.wait_for_index()
                assert IndexChange.objects.filter(applied=True).count() == 2

    monkeypatch.setattr(maintenance, "_version_batches", batches_with_a_write_in_between)
    report = indexing.rebuild(batch_size=2)
    assert report.replayed == 2
    assert found("latecomer") == ["docs/late.txt"]
    assert_in_step()


def test_second_rebuild_at_the_same_time_is_refused(monkeypatch):
    from versioned_items.exceptions import IndexUnavailable
    from versioned_items.search import locks

    with locks.rebuild_lock():
        with pytest.raises(IndexUnavailable, match="rebuild lock"):
            indexing.rebuild()


def test_update_index_fixes_only_the_differences():
    v1 = _sample_store()
    indexed()
    backend_latest = indexing.latest_side().backend
    backend_history = indexing.history_side().backend
    backend_latest.remove(f"versioned_items.node.{v1.node_id}")  # a missing document
    backend_history.remove(f"versioned_items.version.{v1.serial}")
    api.set_attributes(v1.serial, {"k": "changed"})
    IndexChange.objects.all().delete()  # a change whose entries got lost
    stale = api.put("docs/stale.txt", b"stale")
    indexed()
    IndexChange.objects.all().delete()
    api.remove_version(stale.serial)  # leaves stale documents when its entries are lost
    IndexChange.objects.all().delete()

    dry = indexing.update_index(dry_run=True)
    assert (len(dry.diff.latest.missing), len(dry.diff.latest.stale)) == (1, 1)
    assert (len(dry.diff.history.missing), len(dry.diff.history.stale)) == (1, 1)
    assert indexing.compare().count == dry.diff.count  # nothing changed
    report = indexing.update_index()
    assert report.diff.count == dry.diff.count
    assert_in_step()


def test_compare_finds_changed_documents():
    v1 = api.put("docs/a.txt", b"alpha", attributes={"k": "v"})
    indexed()
    api.set_attributes(v1.serial, {"k": "w"})
    IndexChange.objects.all().delete()
    diff = indexing.compare()
    assert diff.latest.changed == {v1.node_id}
    assert diff.history.changed == {v1.serial}


def test_check_reports_statistics_and_backlog(settings):
    _sample_store()
    report = indexing.check()
    assert report.ok and report.pending == 0 and report.statistics == []
    api.put("docs/late.txt", b"x")
    IndexChange.objects.update(created=timezone.now() - timedelta(hours=1))
    report = indexing.check(apply=False)
    assert not report.ok
    assert report.overdue == 2
    assert report.diff.latest.missing and report.diff.history.missing


# --- maintenance runs and the index status ---------------------------------------------------


def test_rebuild_update_and_check_record_their_runs():
    _sample_store()
    indexed()
    indexing.rebuild()
    indexing.update_index(dry_run=True)
    indexing.check()
    runs = {run.kind: run for run in MaintenanceRun.objects.all()}
    rebuild, update, check = runs["rebuild"], runs["update"], runs["check"]
    assert (rebuild.latest_documents, rebuild.history_documents, rebuild.differences) == (2, 5, None)
    assert update.dry_run and update.differences == 0 and update.latest_documents == 2
    assert (check.differences, check.statistics_differences) == (0, 0)
    assert all(run.finished >= run.started and run.error == "" for run in runs.values())


def test_index_status_reports_each_index(django_assert_num_queries):
    status = indexing.index_status()
    assert [(i.name, i.documents, i.pending, i.last_rebuild, i.last_check) for i in status.indexes] == [
        ("latest", 0, 0, None, None),
        ("history", 0, 0, None, None),
    ]
    _sample_store()
    indexed()
    indexing.rebuild()
    api.put("docs/late.txt", b"late")  # two changes wait in the outbox
    api.put("docs/a.txt", b"alpha three")
    IndexChange.objects.filter(kind=IndexChange.Kind.HISTORY).update(
        created=timezone.now() - timedelta(minutes=5)
    )
    with django_assert_num_queries(3):
        latest, history = indexing.index_status().indexes
    assert (latest.documents, history.documents) == (2, 5)
    assert (latest.pending, history.pending) == (2, 3)
    assert history.pending_age >= timedelta(minutes=5) > latest.pending_age
    assert latest.last_rebuild == history.last_rebuild == MaintenanceRun.objects.get(kind="rebuild").finished
    assert latest.last_check is None


def test_index_status_keeps_the_last_successful_check_and_shows_a_failed_one(monkeypatch):
    _sample_store()
    indexed()
    api.set_attributes(api.lookup("docs/a.txt").serial, {"k": "lost"})
    IndexChange.objects.all().delete()  # both documents of the current version now differ
    indexing.check()
    monkeypatch.setattr(
        compare, "compare", lambda **kwargs: (_ for _ in ()).throw(IndexUnavailable("index down"))
    )
    with pytest.raises(IndexUnavailable):
        indexing.check()
    status = indexing.index_status()
    assert [i.last_check_differences for i in status.indexes] == [1, 1]
    failed = status.last_runs["check"]
    assert failed.finished is None and failed.error == "IndexUnavailable: index down"


def test_an_unreadable_index_is_a_problem_not_an_error(search_index):
    from haystack import connections

    connections.connections_info["vi_history"]["PATH"] = str(search_index / "nowhere")
    connections.reload("vi_history")
    latest, history = indexing.index_status().indexes
    assert latest.documents == 0 and latest.problem == ""
    assert history.documents is None and "nowhere" in history.problem


@pytest.mark.whoosh_only  # counts Whoosh's segments (tantivy's: tests/search/test_search_tantivy_ops.py)
def test_optimize_merges_segments(search_index):
    for i in range(5):
        api.put(f"docs/{i}", b"x")
        indexing.wait_for_index()
    indexing.optimize()
    backend = indexing.latest_side().backend
    assert len(backend.index._segments()) == 1
    assert_in_step()


# --- a rebuild killed half-way ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_rebuild_killed_with_sigkill_leaves_the_live_index_answering(search_index, subprocess_env):
    for i in range(40):
        api.put(f"docs/{i}.txt", f"common word{i}".encode())
    indexing.wait_for_index()
    before = found("common", page_size=100)
    env = child_env(subprocess_env, search_index)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.search_workers", "slow_rebuild", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Half-way: the child has indexed some batches into its temporary index.
    temp = search_index / "vi_history.rebuild"
    for line in child.stdout:
        if line.startswith("progress") and int(line.split()[1]) >= 15:
            break
    else:
        pytest.fail(child.stderr.read())
    assert temp.exists()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert found("common", page_size=100) == before
    killed = indexing.index_status().last_runs["rebuild"]
    assert killed.finished is None and killed.error == ""  # recorded as started, never finished
    api.put("docs/after.txt", b"common after")  # the live index takes writes again
    assert "docs/after.txt" in found("common", page_size=100)
    report = indexing.rebuild()  # the next run starts clean
    assert report.history == 41
    assert not temp.exists()
    assert indexing.index_status().indexes[0].last_rebuild is not None
    assert_in_step()


# --- any Haystack backend --------------------------------------------------------------------


@pytest.fixture
def stock_whoosh(search_index):
    """Both connections on Haystack's own Whoosh backend: a stand-in for "another backend"."""
    from haystack import connections

    from ..search_fixtures import ALIASES

    saved = {alias: connections.connections_info[alias]["ENGINE"] for alias in ALIASES}
    for alias in ALIASES:
        connections.connections_info[alias]["ENGINE"] = "haystack.backends.whoosh_backend.WhooshEngine"
        connections.reload(alias)
    yield
    # the engine the run configured (VI_TEST_ENGINE): putting the Whoosh engine back left the
    # later tests of a tantivy run on Whoosh, and their worker processes (on tantivy) found
    # no index
    for alias, engine in saved.items():
        connections.connections_info[alias]["ENGINE"] = engine
        connections.reload(alias)


def test_another_haystack_backend_is_kept_in_step_too(stock_whoosh):
    assert not indexing.latest_side().app_engine
    api.put("docs/a.txt", b"alpha words", user="ann")
    api.put("docs/a.txt", b"beta words", user="ann")
    api.put("docs/b.txt", b"gamma words", user="bob")
    indexing.wait_for_index()
    assert found("beta") == ["docs/a.txt"]
    assert sorted(found("words")) == ["docs/a.txt", "docs/b.txt"]
    assert found("words", muser="bob") == ["docs/b.txt"]
    api.delete("docs/b.txt")
    indexing.wait_for_index()
    assert found("gamma") == []
    assert found("gamma", cluster=Cluster.DELETED) == ["docs/b.txt"]
    assert_in_step()
    report = indexing.rebuild()  # cleared and refilled in place
    assert (report.latest, report.history) == (1, 4)
    assert_in_step()
