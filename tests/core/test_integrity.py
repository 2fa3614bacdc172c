"""The integrity checker: each kind of problem, made by corrupting the store behind the API's
back, is reported exactly, and repaired or reported as unrepairable."""

import io
import os
import shutil
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from versioned_items import api, integrity
from versioned_items.blobs import checksum_of as content_checksum
from versioned_items.blobs import content_name, storage
from versioned_items.conf import app_settings
from versioned_items.integrity import Problem
from versioned_items.models import Blob, Cluster, Node, Statistics, Version, direct_writes

from ..helpers import snapshot

pytestmark = pytest.mark.django_db

NOW = timedelta(0)


@pytest.fixture(autouse=True)
def core_checks_only(monkeypatch):
    """The core's checks: the search app's index comparison is tested with its commands."""
    monkeypatch.delitem(integrity._checkers, "search", raising=False)


@pytest.fixture(autouse=True)
def empty_content_storage():
    """The content files of earlier tests (the storage outlives their databases) are not ours."""
    shutil.rmtree(storage().path(app_settings.CONTENT_PREFIX), ignore_errors=True)


@pytest.fixture
def store():
    """A small store: an item with history, a deleted item, two items sharing content."""
    v1 = api.put("docs/a.txt", b"alpha one")
    v2 = api.put("docs/a.txt", b"alpha two")
    api.put("docs/b.txt", b"beta")
    api.delete("docs/b.txt")
    api.put("docs/c.txt", b"shared")
    api.put("other/d.txt", b"shared")
    return {"v1": v1, "v2": v2}


def kinds(report) -> list[str]:
    return [p.kind for p in report.problems]


def age(name: str, seconds: float) -> None:
    path = storage().path(name)
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_clean_store_reports_nothing(store):
    report = integrity.check(verify_content=True, grace=NOW)
    assert report.problems == [] and not report
    assert report.counts["nodes"] == 7 and report.counts["content"] == 4 and report.counts["files"] == 4


def test_an_empty_store_reports_nothing():
    assert not integrity.check(verify_content=True, grace=NOW)


def test_statistics_difference(store):
    with direct_writes():  # damage on purpose
        Statistics.objects.filter(node__path="docs", cluster=Cluster.NORMAL).update(population=7)
    report = integrity.check()
    assert kinds(report) == ["statistics"]
    assert report.problems[0].path == "docs" and "population=7" in str(report.problems[0])


def test_two_normal_versions(store):
    with direct_writes():  # damage on purpose
        Version.objects.filter(serial=store["v1"].serial).update(cluster=Cluster.NORMAL)
    report = integrity.check()
    problem = next(p for p in report.problems if p.kind == "several-normal")
    assert problem.path == "docs/a.txt" and problem.serials == [store["v1"].serial, store["v2"].serial]
    assert set(kinds(report)) == {"several-normal", "statistics"}


def test_non_current_version_in_normal(store):
    with direct_writes():  # damage on purpose
        Version.objects.filter(serial=store["v2"].serial).update(cluster=Cluster.HISTORY)
    with direct_writes():  # damage on purpose
        Version.objects.filter(serial=store["v1"].serial).update(cluster=Cluster.NORMAL)
    report = integrity.check()
    problem = next(p for p in report.problems if p.kind == "normal-not-current")
    assert problem.serials == [store["v1"].serial]
    assert kinds(report) == ["normal-not-current"]  # equal sizes: the statistics still agree


def test_delete_marker_not_deleted(store):
    marker = api.lookup("docs/b.txt", cluster=Cluster.DELETED)
    with direct_writes():  # damage on purpose
        Version.objects.filter(serial=marker.serial).update(cluster=Cluster.NORMAL)
    report = integrity.check()
    problem = next(p for p in report.problems if p.kind == "marker-not-deleted")
    assert problem.serials == [marker.serial] and problem.path == "docs/b.txt"
    assert set(kinds(report)) == {"marker-not-deleted", "statistics"}


@pytest.mark.parametrize(
    "pointer, kind",
    [
        (lambda s: None, "current-missing"),
        (lambda s: s["v1"].serial, "current-not-newest"),
        (lambda s: api.lookup("docs/c.txt").serial, "current-foreign"),
    ],
)
def test_wrong_current_pointer(store, pointer, kind):
    with direct_writes():  # damage on purpose
        Node.objects.filter(path="docs/a.txt").update(current=pointer(store))
    report = integrity.check()
    assert kinds(report) == [kind]
    assert report.problems[0].path == "docs/a.txt"


def test_folders_without_versions_are_fine(store):
    api.create_node("empty/folder")
    assert not integrity.check()


def test_wrong_parent(store):
    with direct_writes():  # damage on purpose
        Node.objects.filter(path="docs/a.txt").update(parent=Node.objects.get(path="other"))
    assert kinds(integrity.check()) == ["parent"]


def test_missing_parent(store):
    with direct_writes():  # damage on purpose
        Node.objects.filter(path="docs/a.txt").update(parent=None)
    assert kinds(integrity.check()) == ["parent"]


def test_wrong_depth(store):
    with direct_writes():  # damage on purpose
        Node.objects.filter(path="docs/a.txt").update(depth=5)
    report = integrity.check()
    assert kinds(report) == ["depth"] and "expected 2" in str(report.problems[0])


def test_root_with_a_parent(store):
    with direct_writes():  # damage on purpose
        Node.objects.filter(path="").update(parent=Node.objects.get(path="docs"))
    assert kinds(integrity.check()) == ["root"]


def test_wrong_refcount(store):
    checksum = api.lookup("docs/c.txt").checksum
    Blob.objects.filter(checksum=checksum).update(refcount=5)
    report = integrity.check()
    assert kinds(report) == ["refcount"]
    assert report.problems[0].checksum == checksum and "2 versions use it" in str(report.problems[0])


def test_version_without_blob_row(store):
    checksum = api.lookup("docs/c.txt").checksum
    Blob.objects.filter(checksum=checksum).delete()
    report = integrity.check(grace=NOW)
    assert kinds(report) == ["blob-missing"]  # the file is used by versions: not an orphan


def test_missing_content_names_the_versions(store):
    version = api.lookup("docs/c.txt")
    storage().delete(content_name(version.checksum))
    report = integrity.check()
    assert kinds(report) == ["content-missing"]
    problem = report.problems[0]
    assert problem.checksum == version.checksum
    assert problem.serials == [version.serial, api.lookup("other/d.txt").serial]
    assert "docs/c.txt" in str(problem) and "other/d.txt" in str(problem)


def test_wrong_size(store):
    version = api.lookup("docs/c.txt")
    name = content_name(version.checksum)
    storage().delete(name)
    storage().save(name, ContentFile(b"sha"))  # cut short, as a killed write leaves it
    report = integrity.check()
    assert kinds(report) == ["content-size"] and len(report.problems[0].serials) == 2


def test_wrong_hash_only_with_verify_content(store):
    version = api.lookup("docs/c.txt")
    name = content_name(version.checksum)
    storage().delete(name)
    storage().save(name, ContentFile(b"SHARED"))  # same size, other bytes
    assert not integrity.check()
    report = integrity.check(verify_content=True)
    assert kinds(report) == ["content-hash"] and report.problems[0].path == "docs/c.txt"


def test_orphan_older_than_grace(store):
    checksum = "ab" * 32
    name = content_name(checksum)
    storage().save(name, ContentFile(b"nobody"))
    report = integrity.check()
    assert not report and report.counts["young_files"] == 1  # may be a write in flight
    age(name, 7200)
    report = integrity.check()
    assert kinds(report) == ["orphan"] and report.problems[0].name == name


def test_stray_files_are_orphans(store):
    storage().save("versioned_items/ab/cd/not-a-checksum", ContentFile(b"x"))
    storage().save("versioned_items/zz/file", ContentFile(b"y"))
    report = integrity.check(grace=NOW)
    assert sorted(p.name for p in report.problems) == [
        "versioned_items/ab/cd/not-a-checksum",
        "versioned_items/zz/file",
    ]
    assert kinds(report) == ["orphan", "orphan"]


def test_stale_temp_file(store):
    name = "versioned_items/tmp/upload-1"
    storage().save(name, ContentFile(b"half"))
    report = integrity.check()
    assert not report and report.counts == {**report.counts, "temp_files": 1, "young_files": 1}
    report = integrity.check(grace=NOW)
    assert kinds(report) == ["stale-temp"] and report.problems[0].name == name


def test_registered_checker_runs(store):
    def extra(report, options):
        report.notes.append("extra: looked")
        report.add("extra", "something else is wrong")

    integrity.register_checker("test-extra", extra)
    try:
        report = integrity.check()
        assert kinds(report)[-1:] == ["extra"] and report.notes[-1] == "extra: looked"
        assert "extra" not in kinds(integrity.check(checkers=False))
    finally:
        integrity._checkers.pop("test-extra")


# --- repair ----------------------------------------------------------------------------------


def repaired(**kwargs):
    """Repair; the store is whole afterwards. Returns the kinds repaired, sorted, once each."""
    report = integrity.repair(**kwargs)
    assert report.problems == [], report.problems
    assert not integrity.check(verify_content=True, grace=kwargs.get("grace"))
    return sorted({p.kind for p in report.repaired})


def test_repair_of_a_clean_store_changes_nothing(store):
    before = snapshot()
    report = integrity.repair(verify_content=True, grace=NOW)
    assert not report and report.repaired == []
    assert snapshot() == before


def test_repair_recomputes_statistics(store):
    with direct_writes():  # damage on purpose
        Statistics.objects.filter(node__path="docs", cluster=Cluster.NORMAL).update(population=7, size=-3)
    with direct_writes():  # damage on purpose
        Statistics.objects.filter(node__path="other").delete()
    assert repaired() == ["statistics"]
    assert api.get_statistics("docs").population == 2


def test_repair_keeps_the_newest_of_two_normal_versions(store):
    with direct_writes():  # damage on purpose
        Version.objects.filter(serial=store["v1"].serial).update(cluster=Cluster.NORMAL)
    assert repaired() == ["several-normal", "statistics"]
    assert Version.objects.get(serial=store["v1"].serial).cluster == Cluster.HISTORY
    assert api.lookup("docs/a.txt").serial == store["v2"].serial


def test_repair_moves_a_delete_marker_back_to_deleted(store):
    marker = api.lookup("docs/b.txt", cluster=Cluster.DELETED)
    with direct_writes():  # damage on purpose
        Version.objects.filter(serial=marker.serial).update(cluster=Cluster.NORMAL)
    assert repaired() == ["marker-not-deleted", "statistics"]
    assert api.lookup("docs/b.txt") is None


@pytest.mark.parametrize(
    "pointer",
    [
        lambda s: None,
        lambda s: s["v1"].serial,
        lambda s: api.lookup("docs/c.txt").serial,
        lambda s: 10**9,
    ],
)
def test_repair_points_the_node_at_its_newest_version(store, pointer):
    with direct_writes():  # damage on purpose
        Node.objects.filter(path="docs/a.txt").update(current=pointer(store))
    repaired()
    assert api.lookup("docs/a.txt").serial == store["v2"].serial


def test_repair_revives_the_newest_version_of_an_item_that_lost_its_pointer(store):
    # What a purge racing a put left: the current version gone, the newest left in HISTORY.
    with direct_writes():  # damage on purpose
        Version.objects.filter(serial=store["v2"].serial).update(cluster=Cluster.HISTORY)
    with direct_writes():  # damage on purpose
        Node.objects.filter(path="docs/a.txt").update(current=None)
    api.recompute_statistics(fix=True)
    assert repaired() == ["current-missing"]
    assert api.lookup("docs/a.txt").serial == store["v2"].serial


def test_repair_leaves_a_version_moved_to_history_on_purpose(store):
    api.recluster(store["v2"].serial, Cluster.HISTORY)
    before = snapshot()
    assert not integrity.repair().repaired
    assert snapshot() == before


def test_repair_fixes_parents_and_depths_and_creates_missing_folders(store):
    # A put that raced a move of its folder: under the moved node, at a path whose folder is gone.
    api.move("docs", "moved")
    stray = Node.objects.create(path="docs/x.txt", depth=1, parent=Node.objects.get(path="moved"))
    with direct_writes():  # damage on purpose
        Node.objects.filter(path="moved/a.txt").update(depth=9)
    assert repaired() == ["depth", "parent"]
    assert Node.objects.get(pk=stray.pk).parent.path == "docs"
    assert Node.objects.get(path="docs").parent.path == ""
    assert Node.objects.get(path="moved/a.txt").depth == 2


def test_repair_sets_reference_counts_from_the_versions(store):
    shared = api.lookup("docs/c.txt").checksum
    alpha = store["v1"].checksum
    Blob.objects.filter(checksum=shared).update(refcount=7)
    Blob.objects.filter(checksum=alpha).delete()
    assert repaired() == ["blob-missing", "refcount"]
    assert Blob.objects.get(checksum=shared).refcount == 2
    assert Blob.objects.get(checksum=alpha).refcount == 1


def test_repair_frees_content_that_nobody_uses(store, django_capture_on_commit_callbacks):
    checksum = store["v1"].checksum
    api.remove_version(store["v1"].serial)
    Blob.objects.create(checksum=checksum, size=9, refcount=1)  # a release that never happened
    assert storage().exists(content_name(checksum))  # its deletion after commit never ran either
    with django_capture_on_commit_callbacks(execute=True):  # the file goes after the commit
        report = integrity.repair(grace=NOW)
    assert [p.kind for p in report.repaired] == ["refcount"]
    assert report.kinds() == ["orphan"]  # checked again before the commit deleted it
    assert not integrity.check(grace=NOW)
    assert not Blob.objects.filter(checksum=checksum).exists()
    assert not storage().exists(content_name(checksum))


def test_repair_deletes_orphans_and_stale_temp_files_older_than_grace_only(store):
    old = [content_name("ab" * 32), "versioned_items/zz/file", "versioned_items/tmp/upload-1"]
    young = content_name("cd" * 32)
    for name in old + [young]:
        storage().save(name, ContentFile(b"left behind"))
    for name in old:
        age(name, 7200)
    assert repaired() == ["orphan", "stale-temp"]
    assert [storage().exists(name) for name in old + [young]] == [False, False, False, True]


def test_an_orphan_that_a_put_stores_meanwhile_is_kept(store):
    data = b"stored again"
    name = content_name(content_checksum(data))
    storage().save(name, ContentFile(data))
    age(name, 7200)
    found = integrity.check()
    api.put("late/put.txt", data)  # between the check and the repair's deletion
    integrity._repair_files([], found.problems, integrity.Options(False, NOW, integrity._no_progress))
    assert storage().exists(name)
    assert not integrity.check(verify_content=True)


def test_missing_and_damaged_content_is_reported_not_repaired(store):
    missing = api.lookup("docs/c.txt")
    storage().delete(content_name(missing.checksum))
    damaged = content_name(store["v2"].checksum)
    storage().delete(damaged)
    storage().save(damaged, ContentFile(b"ALPHA TWO"))
    report = integrity.repair(verify_content=True)
    assert report.kinds() == ["content-hash", "content-missing"] and report.repaired == []
    problem = next(p for p in report.problems if p.kind == "content-missing")
    assert problem.serials == [missing.serial, api.lookup("other/d.txt").serial]
    api.put("again/c.txt", b"shared")  # the same bytes heal the missing file
    assert integrity.repair(verify_content=True).kinds() == ["content-hash"]


def test_registered_repair_runs_with_what_the_check_found(store):
    seen = []

    def extra(report, options):
        report.add("extra", "something else is wrong")

    def fix(report, options):
        seen.append([p.kind for p in report.problems])
        report.repaired.append(Problem("extra", "fixed it"))

    integrity.register_checker("test-extra", extra, fix)
    try:
        report = integrity.repair()
        assert seen == [["extra"]] and [p.message for p in report.repaired] == ["fixed it"]
    finally:
        integrity._checkers.pop("test-extra")


# --- the vi_check command --------------------------------------------------------------------


def vi_check(*args) -> str:
    out = io.StringIO()
    call_command("vi_check", *args, stdout=out)
    return out.getvalue()


def test_vi_check_reports_then_fixes(store):
    with direct_writes():  # damage on purpose
        Version.objects.filter(serial=store["v1"].serial).update(cluster=Cluster.NORMAL)
    storage().save("versioned_items/tmp/upload-1", ContentFile(b"half"))
    with pytest.raises(CommandError, match="^6 problems found$"):
        vi_check("--grace", "0")
    out = vi_check("--fix", "--grace", "0", "--verify-content")
    assert "repaired: [several-normal] docs/a.txt has 2 live (NORMAL) versions" in out
    assert "repaired: [stale-temp] content file versioned_items/tmp/upload-1" in out
    assert out.endswith("no problems found\n")
    assert vi_check("--grace", "0").startswith("checked 7 nodes, 4 contents, 4 content files")


def test_vi_check_fix_says_what_remains(store):
    storage().delete(content_name(api.lookup("docs/c.txt").checksum))
    with pytest.raises(CommandError, match="^1 problems remain after the repair$"):
        call_command("vi_check", "--fix", verbosity=0)


def test_vi_check_refuses_a_negative_grace():
    with pytest.raises(CommandError, match="--grace"):
        vi_check("--grace", "-1")
