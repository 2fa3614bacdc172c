"""The races of issue 8, made deterministic: one OS process holds its transaction open at a
known point (after its operation, before commit), the other process runs the racing operation
and waits for the locks (on PostgreSQL the test sees it waiting in ``pg_stat_activity``; SQLite
serializes writers at ``BEGIN IMMEDIATE``), then the first one commits.

On the code before the locking discipline (commit b95e8a4), on PostgreSQL, every test here
failed except three that guard against regressions: a purge then a put of the same item,
remove_version racing set_attributes, and a recluster of the current version and back. The
deadlock of two batches with a callable body needs ``api.batch(body)``, which was not there.
On SQLite, where writers were already serialized, only the recluster rules failed.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from versioned_items import api, blobs
from versioned_items.exceptions import InvalidArgument
from versioned_items.models import Blob, Cluster, Node, Version

from ..helpers import assert_statistics_exact

pytestmark = pytest.mark.django_db(transaction=True)


def _start(env, folder: Path, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.race_workers", args[0], str(folder), *map(str, args[1:])],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _answer(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _wait_for(condition, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def race(env, tmp_path: Path, holder: tuple, racer: tuple) -> tuple[dict, dict]:
    """Run ``holder`` (a step held open before commit), then ``racer`` against it; return
    both answers."""
    first = _start(env, tmp_path, f"hold_{holder[0]}", *holder[1:])
    _wait_for(lambda: (tmp_path / "held").exists() or first.poll() is not None, "the holder")
    second = _start(env, tmp_path, *racer)
    _wait_for(lambda: (tmp_path / f"started-{racer[0]}").exists(), "the racer")
    if connection.vendor == "postgresql":
        _wait_for(_waiting_on_a_lock, "the racer to wait for a lock")
    else:
        time.sleep(0.5)  # it waits at BEGIN IMMEDIATE; the outcome does not depend on when
    (tmp_path / "release").touch()
    return _answer(first), _answer(second)


def assert_app_errors_only(*answers: dict) -> None:
    for answer in answers:
        if "error" in answer:
            assert answer["error"].startswith("versioned_items."), answer


def assert_invariants() -> None:
    """At most one NORMAL version per node, and it is the current one; current pointers are the
    newest versions; reference counts equal the versions; statistics equal a recomputation;
    every node's parent has its parent path."""
    for node in Node.objects.all():
        versions = list(Version.objects.filter(node=node).order_by("-serial"))
        normal = [v.serial for v in versions if v.cluster == Cluster.NORMAL]
        assert node.current_id == (versions[0].serial if versions else None), node.path
        assert normal in ([], [node.current_id]), (node.path, normal)
        if node.path:
            assert Node.objects.get(pk=node.parent_id).path == node.path.rpartition("/")[0], node.path
    used = {}
    for checksum in Version.objects.exclude(checksum="").values_list("checksum", flat=True):
        used[checksum] = used.get(checksum, 0) + 1
    assert dict(Blob.objects.values_list("checksum", "refcount")) == used
    assert_statistics_exact()


def test_two_purges_of_one_subtree(subprocess_env, tmp_path):
    for i in range(3):
        api.put(f"tree/a{i}", b"shared")
        api.put(f"tree/a{i}", b"new %d" % i)
    api.put("elsewhere", b"shared")  # a third user of the content the purges free
    first, second = race(subprocess_env, tmp_path, ("purge", "tree"), ("purge", "tree"))
    assert len(first["result"]) == 3
    assert second == {"result": []}  # it deleted nothing, so it reports nothing
    assert api.open_content(api.lookup("elsewhere")).read() == b"shared"
    assert_invariants()


def test_put_racing_a_purge_of_the_current_delete_marker(subprocess_env, tmp_path):
    api.put("item", b"old")
    api.delete("item")
    first, second = race(subprocess_env, tmp_path, ("put", "item"), ("purge_deleted", "item"))
    assert len(second["result"]) == 1
    current = api.lookup("item")
    assert current is not None and current.serial == first["result"]
    assert_invariants()


def test_purge_then_put_of_the_same_item(subprocess_env, tmp_path):
    api.put("item", b"old")
    api.delete("item")
    first, second = race(subprocess_env, tmp_path, ("purge_deleted", "item"), ("put", "item"))
    assert api.lookup("item").serial == second["result"]
    assert_invariants()


def test_put_of_a_new_item_racing_a_move_of_its_folder(subprocess_env, tmp_path):
    api.put("src/sub/old", b"1")
    first, second = race(subprocess_env, tmp_path, ("move", "src", "dst"), ("put", "src/sub/new"))
    assert first == {"result": "dst"}
    assert api.lookup("src/sub/new").serial == second["result"]  # after the move: new folders
    assert api.lookup("dst/sub/old") is not None and api.lookup("dst/sub/new") is None
    assert_invariants()
    assert api.recompute_statistics(fix=True) == []


def test_put_of_an_item_being_moved(subprocess_env, tmp_path):
    api.put("src/sub/item", b"1")
    first, second = race(subprocess_env, tmp_path, ("move", "src", "dst"), ("put", "src/sub/item"))
    assert "error" not in second, second  # never NodeNotFound for an item that exists
    assert [v.serial for v in api.versions("src/sub/item")] == [second["result"]]
    assert len(api.versions("dst/sub/item")) == 1
    assert_invariants()


def test_move_onto_a_path_a_racing_put_creates(subprocess_env, tmp_path):
    api.put("from/x", b"1")
    first, second = race(subprocess_env, tmp_path, ("put", "to"), ("move", "from", "to"))
    assert_app_errors_only(first, second)
    assert second["error"] == "versioned_items.exceptions.NodeExists", second
    assert_invariants()


def test_remove_version_racing_set_attributes(subprocess_env, tmp_path):
    serial = api.put("attr", b"1").serial
    api.put("attr", b"2")
    first, second = race(subprocess_env, tmp_path, ("set_attributes", serial), ("remove_version", serial))
    assert_app_errors_only(first, second)
    assert "error" not in second, second
    assert not Version.objects.filter(serial=serial).exists()
    assert_invariants()


def test_two_create_nodes_of_one_new_path(subprocess_env, tmp_path):
    step = ("create_node", "new/folder")
    first, second = race(subprocess_env, tmp_path, step, step)
    assert first == {"result": api.get_node("new/folder").pk}
    assert second.get("error") == "versioned_items.exceptions.NodeExists", second  # not a second success
    assert Node.objects.filter(path__startswith="new").count() == 2
    assert_invariants()


@pytest.mark.parametrize("form", ["callable", "with"])
def test_batches_that_deadlock(subprocess_env, tmp_path, form):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: batches cannot deadlock there")
    for path in ("a", "b"):
        api.put(path, b"0")
    workers = [
        _start(subprocess_env, tmp_path, "crossed_batch", me, other, first, second, form)
        for me, other, first, second in (("A", "B", "a", "b"), ("B", "A", "b", "a"))
    ]
    answers = [_answer(worker) for worker in workers]
    assert_app_errors_only(*answers)
    if form == "callable":  # the deadlock's victim ran its body again, and both committed
        assert sorted(answer["result"] for answer in answers) == [1, 2], answers
        assert [len(api.versions(path)) for path in ("a", "b")] == [3, 3]
    else:  # a block cannot be run again: its caller gets ConcurrentUpdate, nothing written
        assert sorted(answer.get("error", "") for answer in answers) == [
            "",
            "versioned_items.exceptions.ConcurrentUpdate",
        ], answers
        assert [len(api.versions(path)) for path in ("a", "b")] == [2, 2]
    assert_invariants()


def _contents_in_checksum_order(count: int) -> list[str]:
    return sorted((f"content {i}" for i in range(count)), key=lambda text: blobs.checksum_of(text.encode()))


def test_purge_releasing_content_racing_a_put_of_the_same_contents(subprocess_env, tmp_path):
    low, high = _contents_in_checksum_order(2)
    for text in (high, low, "current"):  # Blob rows stored out of checksum order: high, low
        api.put("item", text.encode())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # as autovacuum would: the planner sees one page, scans it
            cursor.execute(f"ANALYZE {Blob._meta.db_table}")
    # The purge (in a batch, so that a deadlock is not retried away) drops a reference to both;
    # the holder adds one to low, waits, then one to high.
    first, second = race(
        subprocess_env, tmp_path, ("put_then_put", "h1", low, "h2", high), ("purge_in_batch", "item")
    )
    assert_app_errors_only(first, second)
    assert "error" not in first and "error" not in second, (first, second)  # no deadlock
    assert len(second["result"]) == 2
    assert [api.open_content(api.lookup(p)).read().decode() for p in ("h1", "h2")] == [low, high]
    assert_invariants()


# --- recluster rules (no race needed: the old code allowed these one call at a time) ---------


def test_recluster_cannot_make_a_second_normal_version():
    old = api.put("rc", b"1")
    api.put("rc", b"2")
    with pytest.raises(InvalidArgument, match="only the current version can be NORMAL"):
        api.recluster(old.serial, Cluster.NORMAL)
    assert_invariants()


def test_recluster_cannot_make_a_delete_marker_look_live():
    api.put("rm", b"1")
    marker = api.delete("rm")
    for cluster in (Cluster.NORMAL, Cluster.HISTORY):
        with pytest.raises(InvalidArgument, match="delete marker"):
            api.recluster(marker.serial, cluster)
    assert api.lookup("rm") is None
    assert_invariants()


def test_recluster_of_the_current_version_and_back():
    version = api.put("rb", b"1")
    api.recluster(version.serial, Cluster.HISTORY)
    assert api.lookup("rb") is None
    api.recluster(version.serial, Cluster.NORMAL)
    assert api.lookup("rb").serial == version.serial
    assert_invariants()
