"""The service API: nodes, versions, attributes, statistics."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from versioned_items import api, blobs
from versioned_items.exceptions import (
    ConcurrentUpdate,
    InvalidArgument,
    InvalidPath,
    NodeExists,
    NodeNotEmpty,
    NodeNotFound,
    VersionedItemsError,
    VersionNotFound,
)
from versioned_items.models import Blob, Cluster, Version, direct_writes
from versioned_items.signals import versions_changed

from ..helpers import assert_statistics_exact, snapshot, statements

pytestmark = pytest.mark.django_db


@pytest.fixture
def signals():
    """The change sets sent by versions_changed during the test."""
    received = []

    def receiver(sender, changes, **kwargs):
        received.append(changes)

    versions_changed.connect(receiver, sender=Version)
    yield received
    versions_changed.disconnect(receiver, sender=Version)


# --- nodes -----------------------------------------------------------------------------------


def test_create_node_makes_parents_and_refuses_duplicates():
    node = api.create_node("a/b/c")
    assert node.path == "a/b/c" and node.depth == 3 and node.name == "c"
    parent = api.get_node("a/b")
    assert node.parent_id == parent.pk and parent.parent.path == "a"
    assert api.get_node("").parent is None
    with pytest.raises(NodeExists, match="a/b/c"):
        api.create_node("/a/b/c")


def test_lookup_and_get_node():
    assert api.lookup_node("nope") is None
    with pytest.raises(NodeNotFound, match="'nope'"):
        api.get_node("nope")
    node = api.create_node("x")
    assert api.get_node(node.pk) == node


def test_children_and_count():
    for name in ("c", "a", "b"):
        api.put(f"dir/{name}", b"x")
    api.put("dir/a/deep", b"x")
    assert [n.path for n in api.children("dir")] == ["dir/a", "dir/b", "dir/c"]
    assert [n.path for n in api.children("dir", after="dir/a", limit=1)] == ["dir/b"]
    assert api.count_children("dir") == 3
    with pytest.raises(InvalidArgument, match="limit"):
        api.children("dir", limit=-1)


def test_remove_node():
    api.put("d/f", b"12345")
    with pytest.raises(NodeNotEmpty, match="'d'"):
        api.remove_node("d")
    api.remove_node("d/f")
    assert api.lookup_node("d/f") is None
    assert api.get_statistics("d").size == 0
    assert Blob.objects.count() == 0
    assert_statistics_exact()


def test_move_rewrites_the_subtree_and_moves_statistics():
    api.put("src/a.txt", b"aaa")
    api.put("src/sub/b.txt", b"bb")
    api.put("src/sub/b.txt", b"bbb")
    api.put("keep.txt", b"k")
    api.move("src", "dst/new")
    assert api.lookup_node("src/a.txt") is None
    assert api.lookup("dst/new/sub/b.txt").open().read() == b"bbb"
    assert api.get_node("dst/new/sub/b.txt").depth == 4
    assert api.get_node("dst/new").parent.path == "dst"
    assert api.get_statistics("").size == 7
    assert api.get_statistics("dst").size == 6 and api.get_statistics("dst", Cluster.HISTORY).size == 2
    assert_statistics_exact()


def test_move_refuses_bad_targets():
    api.put("m/a", b"1")
    api.put("n", b"1")
    before = snapshot()
    with pytest.raises(InvalidPath, match="into itself"):
        api.move("m", "m/inner")
    with pytest.raises(NodeExists):
        api.move("m", "n")
    with pytest.raises(NodeNotFound):
        api.move("zzz", "yyy")
    assert snapshot() == before


# --- writing versions ------------------------------------------------------------------------


def test_put_creates_a_normal_version_and_keeps_history():
    v1 = api.put("docs/readme.txt", "hello", user="alice")
    v2 = api.put("docs/readme.txt", b"hello again", user="bob", content_type="text/x-special")
    v1.refresh_from_db()
    assert (v1.cluster, v2.cluster) == (Cluster.HISTORY, Cluster.NORMAL)
    assert v2.serial > v1.serial and v2.mtime >= v1.mtime
    assert v1.content_type == "text/plain" and v2.content_type == "text/x-special"
    assert v2.muser == "bob" and v2.size == 11
    assert v2.checksum == blobs.checksum_of(b"hello again")
    assert api.get_node("docs/readme.txt").current_id == v2.serial
    assert api.open_content(v1.serial).read() == b"hello"
    assert [v.serial for v in api.versions("docs/readme.txt")] == [v2.serial, v1.serial]
    assert_statistics_exact()


def test_mtime_is_aware_with_microseconds():
    version = api.put("t", b"x")
    version.refresh_from_db()
    assert timezone.is_aware(version.mtime)
    stamps = {api.put("t", b"x%d" % i).mtime.microsecond for i in range(3)}
    assert len(stamps) >= 2


def test_identical_content_is_stored_once():
    for path in ("a", "b", "c/d"):
        api.put(path, b"same bytes")
    assert Blob.objects.get().refcount == 3
    store = blobs.storage()
    assert store.exists(blobs.content_name(blobs.checksum_of(b"same bytes")))


def test_versioning_none_keeps_only_the_current_version():
    api.create_node("scratch", versioning="none")
    first = api.put("scratch/deep/file", b"one")
    second = api.put("scratch/deep/file", b"two")
    assert list(api.versions("scratch/deep/file")) == [second]
    assert not Version.objects.filter(serial=first.serial).exists()
    assert Blob.objects.filter(checksum=first.checksum).count() == 0
    assert_statistics_exact()


def test_delete_writes_a_marker_and_keeps_history():
    v1 = api.put("f", b"data")
    marker = api.delete("f", user="carol")
    assert marker.cluster == Cluster.DELETED and marker.size == 0 and marker.is_delete_marker
    assert marker.open().read() == b""
    assert api.lookup("f") is None
    assert api.lookup("f", cluster=Cluster.DELETED) == marker
    assert Version.objects.get(serial=v1.serial).cluster == Cluster.HISTORY
    with pytest.raises(VersionNotFound, match="nothing|no current"):
        api.delete("f")
    assert_statistics_exact()


def test_restore_and_undelete():
    v1 = api.put("r", b"first", attributes={"k": "v"})
    api.put("r", b"second")
    api.delete("r")
    restored = api.restore(v1.serial, user="dave")
    assert restored.source == v1.serial and restored.cluster == Cluster.NORMAL
    assert restored.open().read() == b"first"
    assert api.get_attributes(restored.serial) == {"k": "v"}
    api.delete("r")
    again = api.undelete("r")
    assert again.open().read() == b"first" and again.source == restored.serial
    marker = api.delete("r")
    with pytest.raises(InvalidArgument, match="delete marker"):
        api.restore(marker.serial)
    assert_statistics_exact()


def test_copy_to_another_path():
    original = api.put("a/src", b"payload", attributes={"x": "1"})
    copied = api.copy(original.serial, "b/dst", user="erin")
    assert copied.node.path == "b/dst" and copied.source == original.serial
    assert copied.open().read() == b"payload" and copied.checksum == original.checksum
    assert api.get_attributes(copied.serial) == {"x": "1"}
    assert Blob.objects.get().refcount == 2
    assert_statistics_exact()


def test_recluster():
    version = api.put("c", b"1234")
    api.recluster(version.serial, Cluster.DELETED)
    assert Version.objects.get(serial=version.serial).cluster == Cluster.DELETED
    assert api.get_statistics("", Cluster.DELETED).size == 4
    assert api.get_statistics("", Cluster.NORMAL).size == 0
    with pytest.raises(InvalidArgument, match="cluster 7"):
        api.recluster(version.serial, 7)
    assert_statistics_exact()


def test_remove_version_promotes_the_previous_one():
    v1 = api.put("p", b"1")
    v2 = api.put("p", b"2")
    api.remove_version(v2.serial)
    assert api.get_node("p").current_id == v1.serial
    assert api.lookup("p") == v1 and api.get_version(v1.serial).cluster == Cluster.NORMAL
    marker = api.delete("p")
    v3 = api.put("p", b"3")
    api.remove_version(v3.serial)
    assert api.get_node("p").current_id == marker.serial and api.lookup("p") is None
    with pytest.raises(VersionNotFound, match=str(v2.serial)):
        api.remove_version(v2.serial)
    assert_statistics_exact()


def test_purge_uses_strictly_before(django_capture_on_commit_callbacks):
    v1 = api.put("h/x", b"old")
    v2 = api.put("h/x", b"newer")
    api.put("h/x", b"newest")
    api.put("h/y/z", b"other")
    api.put("h/y/z", b"other2")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.purge("h/x", before=v2.mtime) == [v1.serial]
    history_z = Version.objects.get(node__path="h/y/z", cluster=Cluster.HISTORY)
    with django_capture_on_commit_callbacks(execute=True):
        removed = api.purge("h", clusters=[Cluster.HISTORY], subtree=True)
    assert sorted(removed) == sorted([v2.serial, history_z.serial])
    assert not Version.objects.filter(cluster=Cluster.HISTORY).exists()
    assert not blobs.storage().exists(blobs.content_name(blobs.checksum_of(b"old")))
    assert_statistics_exact()


def test_purge_of_the_current_version_falls_back():
    v1 = api.put("q", b"1")
    api.put("q", b"2")
    api.purge("q", clusters=[Cluster.NORMAL])
    assert api.get_node("q").current_id == v1.serial
    assert api.lookup("q") == v1


# --- reading ---------------------------------------------------------------------------------


def test_lookup_as_of():
    v1 = api.put("asof", b"1")
    v2 = api.put("asof", b"2")
    api.delete("asof")
    assert api.lookup("asof") is None
    assert api.lookup("asof", before=v2.mtime) == v1
    assert api.lookup("asof", before=v1.mtime) is None
    after_v2 = v2.mtime + dt.timedelta(microseconds=1)
    assert api.lookup("asof", before=after_v2) in (v2, None)
    with pytest.raises(InvalidArgument, match="future"):
        api.lookup("asof", before=timezone.now() + dt.timedelta(days=1))
    with pytest.raises(InvalidArgument, match="time zone"):
        api.lookup("asof", before=dt.datetime(2020, 1, 1))


# --- attributes ------------------------------------------------------------------------------


def test_attributes_roundtrip():
    version = api.put("attr", b"x", attributes={"a": "1", "b": "two"})
    api.set_attributes(version.serial, {"a": "3", "c": 4})
    assert api.get_attributes(version.serial) == {"a": "3", "b": "two", "c": "4"}
    assert api.get_attributes(version.serial, ["a"]) == {"a": "3"}
    api.set_attributes(version.serial, {"a": "meta"}, domain="dc")
    assert api.attribute_domains(version.serial) == ["", "dc"]
    assert api.attribute_domains() == ["", "dc"]
    assert api.delete_attributes(version.serial, ["a"]) == 1
    assert api.get_attributes(version.serial) == {"b": "two", "c": "4"}
    assert api.get_attributes(version.serial, domain="dc") == {"a": "meta"}
    other = api.put("attr2", b"y")
    api.copy_attributes(version.serial, other.serial, domain="dc")
    assert api.get_attributes(other.serial, domain="dc") == {"a": "meta"}
    assert api.get_attributes(other.serial) == {}
    assert api.delete_attributes(version.serial) == 2
    with pytest.raises(VersionNotFound):
        api.get_attributes(99999)


def test_latest_attribute_keys():
    api.put("k/a", b"1", attributes={"colour": "red"})
    api.put("k/b", b"1", attributes={"size": "1"})
    api.put("k/b", b"2", attributes={"shape": "round"})
    api.put("k/sub/c", b"1", attributes={"deep": "y"})
    api.put("k/gone", b"1", attributes={"ghost": "y"})
    api.delete("k/gone")
    assert api.latest_attribute_keys("k") == ["colour", "deep", "shape"]
    assert api.latest_attribute_keys("k", prefixes=["k/sub/"]) == ["deep"]
    assert api.latest_attribute_keys("k", except_cluster=Cluster.HISTORY) == ["colour", "deep", "shape"]


# --- statistics ------------------------------------------------------------------------------


def test_statistics_roll_up_with_population_on_the_first_level():
    api.put("s/a/x", b"12")
    api.put("s/a/y", b"345")
    api.put("s/b", b"6")
    assert api.get_statistics("s/a") == api.StatisticsResult(2, 5, api.get_statistics("s/a").mtime)
    stats = api.get_statistics("s")
    assert (stats.population, stats.size) == (1, 6)
    root = api.get_statistics("")
    assert (root.population, root.size) == (0, 6)
    latest = api.latest_statistics("s")
    assert (latest.population, latest.size) == (1, 6)


def test_latest_statistics_as_of():
    v1 = api.put("ls/a", b"1")
    api.put("ls/a", b"22")
    api.put("ls/b", b"333")
    old = api.latest_statistics("ls", before=v1.mtime + dt.timedelta(microseconds=1))
    assert (old.population, old.size) == (1, 1)
    assert api.latest_statistics("ls").size == 5


def test_recompute_reports_and_fixes_differences():
    api.put("z/a", b"123")
    from versioned_items.models import Statistics

    with direct_writes():  # damage on purpose
        Statistics.objects.filter(node__path="z", cluster=Cluster.NORMAL).update(size=99)
    differences = api.recompute_statistics()
    assert [(d.path, d.cluster, d.stored.size, d.expected.size) for d in differences] == [("z", 0, 99, 3)]
    api.recompute_statistics(fix=True)
    assert_statistics_exact()


# --- the change hook -------------------------------------------------------------------------


def test_every_write_reports_its_changes_once(signals):
    v1 = api.put("sig/a", b"1")
    node = v1.node.pk
    v2 = api.put("sig/a", b"2")
    assert (signals[-1].nodes, signals[-1].versions) == ({node}, {v1.serial, v2.serial})
    api.set_attributes(v2.serial, {"k": "v"})
    assert (signals[-1].nodes, signals[-1].versions) == ({node}, {v2.serial})
    api.set_attributes(v1.serial, {"k": "v"})
    assert (signals[-1].nodes, signals[-1].versions) == (set(), {v1.serial})
    api.remove_version(v2.serial)
    assert signals[-1].removed_versions == {v2.serial} and signals[-1].versions == {v1.serial}
    api.move("sig", "sig2")
    assert signals[-1].versions == {v1.serial} and node in signals[-1].nodes
    count = len(signals)
    with api.batch():
        api.put("sig2/b", b"1")
        api.put("sig2/c", b"1")
    assert len(signals) == count + 1 and len(signals[-1].versions) == 2


def test_failed_inner_operation_in_a_batch_leaves_no_statistics():
    with api.batch():
        api.put("b/ok", b"12")
        api.put("b/later", b"1")
        with pytest.raises(InvalidArgument):
            api.put("b/later", b"2", mtime=timezone.now() - dt.timedelta(days=1))
        api.put("b/more", b"345")
    assert_statistics_exact()


def _colliding_once(runs: list):
    """A batch body whose first run collides, as a deadlock inside the batch would."""

    def body():
        runs.append(1)
        api.put("retried", b"run %d" % len(runs))
        if len(runs) == 1:
            raise ConcurrentUpdate("collided with a concurrent write")
        return "done"

    return body


@pytest.mark.django_db(transaction=True)
def test_batch_runs_a_callable_body_again_after_a_collision():
    runs = []
    assert api.batch(_colliding_once(runs)) == "done"
    assert len(runs) == 2
    # The first run rolled back.
    assert [api.open_content(v).read() for v in api.versions("retried")] == [b"run 2"]
    assert_statistics_exact()


def test_batch_body_inside_a_transaction_runs_once():
    runs = []
    with pytest.raises(ConcurrentUpdate), transaction.atomic():
        api.batch(_colliding_once(runs))
    assert len(runs) == 1 and api.lookup_node("retried") is None


def test_rolled_back_transaction_leaves_nothing(signals):
    before = snapshot()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            api.put("rb/x", b"x")
            raise RuntimeError
    assert snapshot() == before


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: api.put("", b"x"), InvalidPath, "empty"),
        (lambda: api.put("a/../b", b"x"), InvalidPath, r"'\.\.'"),
        (lambda: api.put("a\x00", b"x"), InvalidPath, "U\\+0000"),
        (lambda: api.put("a" * 2000, b"x"), InvalidPath, "1024 bytes"),
        (lambda: api.put("ok", b"x", user="u" * 200), InvalidArgument, "150"),
        (lambda: api.put("ok", b"x", attributes={"": "v"}), InvalidArgument, "attribute key"),
        (lambda: api.put("ok", b"x", attributes={"k": "a\x00"}), InvalidArgument, "NUL"),
        (
            lambda: api.put("ok", b"x", mtime=timezone.now() + dt.timedelta(hours=1)),
            InvalidArgument,
            "future",
        ),
        (lambda: api.get_version(0), InvalidArgument, "serial 0"),
        (lambda: api.get_version("7"), InvalidArgument, "serial '7'"),
        (lambda: api.get_version(123456), VersionNotFound, "123456"),
        (lambda: api.delete("never/was"), NodeNotFound, "never/was"),
        (lambda: api.purge("", clusters=[5]), InvalidArgument, "clusters 5"),
        (lambda: api.list_latest(limit=-1), InvalidArgument, "limit -1"),
        (lambda: api.list_latest(filter="a==b"), VersionedItemsError, "operator"),
        (lambda: api.create_node("x", versioning="sometimes"), InvalidArgument, "sometimes"),
    ],
)
def test_bad_input_is_rejected_and_writes_nothing(call, error, message):
    api.put("existing/item", b"data", attributes={"a": "1"})
    before = snapshot()
    with pytest.raises(error, match=message):
        call()
    assert snapshot() == before


def test_mtime_may_not_go_backwards():
    version = api.put("mono", b"1")
    with pytest.raises(InvalidArgument, match="before the current"):
        api.put("mono", b"2", mtime=version.mtime - dt.timedelta(seconds=1))


# --- query counts ----------------------------------------------------------------------------


def count_statements(call):
    with CaptureQueriesContext(connection) as captured:
        call()
    return statements(captured.captured_queries)


def test_put_costs_the_same_few_statements_at_any_depth():
    api.put("q1/leaf", b"0")
    deep = "/".join(f"d{i}" for i in range(12)) + "/leaf"
    api.put(deep, b"0")
    shallow_sql = count_statements(lambda: api.put("q1/leaf", b"1"))
    deep_sql = count_statements(lambda: api.put(deep, b"1"))
    # select ancestors, lock node, read its current version, content upsert, insert version,
    # previous to history, move current pointer, one statistics upsert for all ancestors ...
    core = [s for s in deep_sql if "versioned_items_search" not in s]
    assert len(core) == 8, core
    assert sum("statistics" in s for s in deep_sql) == 1
    # ... plus, with search installed, one insert into its outbox
    assert len(shallow_sql) == len(deep_sql) == 8 + (len(deep_sql) - len(core)) <= 9


def test_put_of_a_new_deep_path_is_bounded():
    api.put("base", b"0")
    sql = count_statements(lambda: api.put("n1/n2/n3/n4/n5/n6/leaf", b"1"))
    assert len([s for s in sql if "versioned_items_search" not in s]) <= 10, sql


def test_lookup_is_one_query(django_assert_num_queries):
    api.put("look/up", b"1")
    with django_assert_num_queries(1):
        api.lookup("look/up")
    before = timezone.now()
    with django_assert_num_queries(1):
        api.lookup("look/up", before=before)


def test_purge_summary_matches_what_purge_deletes():
    api.put("ps/a", b"12345")
    api.put("ps/a", b"1")
    api.put("ps/b/c", b"123")
    api.put("ps/b/c", b"1")
    assert api.purge_summary("ps", subtree=True) == (2, 8)
    assert api.purge_summary("ps/a") == (1, 5)
    assert len(api.purge("ps", subtree=True)) == 2
    assert api.purge_summary("ps", subtree=True) == (0, 0)
