"""The integrity checker: each kind of problem, made by corrupting the store behind the API's
back, is reported exactly, and repaired or reported as unrepairable."""

import os
import shutil
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile

from versioned_items import api, integrity
from versioned_items.conf import app_settings
from versioned_items.content import content_name, storage
from versioned_items.models import Blob, Cluster, Node, Statistics, Version

pytestmark = pytest.mark.django_db

NOW = timedelta(0)


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
    Statistics.objects.filter(node__path="docs", cluster=Cluster.NORMAL).update(population=7)
    report = integrity.check()
    assert kinds(report) == ["statistics"]
    assert report.problems[0].path == "docs" and "population=7" in str(report.problems[0])


def test_two_normal_versions(store):
    Version.objects.filter(serial=store["v1"].serial).update(cluster=Cluster.NORMAL)
    report = integrity.check()
    problem = next(p for p in report.problems if p.kind == "several-normal")
    assert problem.path == "docs/a.txt" and problem.serials == [store["v1"].serial, store["v2"].serial]
    assert set(kinds(report)) == {"several-normal", "statistics"}


def test_non_current_version_in_normal(store):
    Version.objects.filter(serial=store["v2"].serial).update(cluster=Cluster.HISTORY)
    Version.objects.filter(serial=store["v1"].serial).update(cluster=Cluster.NORMAL)
    report = integrity.check()
    problem = next(p for p in report.problems if p.kind == "normal-not-current")
    assert problem.serials == [store["v1"].serial]
    assert kinds(report) == ["normal-not-current"]  # equal sizes: the statistics still agree


def test_delete_marker_not_deleted(store):
    marker = api.lookup("docs/b.txt", cluster=Cluster.DELETED)
    Version.objects.filter(serial=marker.serial).update(cluster=Cluster.NORMAL)
    report = integrity.check()
    problem = next(p for p in report.problems if p.kind == "marker-not-deleted")
    assert problem.serials == [marker.serial] and problem.path == "docs/b.txt"
    assert set(kinds(report)) == {"marker-not-deleted", "statistics"}


@pytest.mark.parametrize("pointer, kind", [
    (lambda s: None, "current-missing"),
    (lambda s: s["v1"].serial, "current-not-newest"),
    (lambda s: api.lookup("docs/c.txt").serial, "current-foreign"),
])
def test_wrong_current_pointer(store, pointer, kind):
    Node.objects.filter(path="docs/a.txt").update(current=pointer(store))
    report = integrity.check()
    assert kinds(report) == [kind]
    assert report.problems[0].path == "docs/a.txt"


def test_folders_without_versions_are_fine(store):
    api.create_node("empty/folder")
    assert not integrity.check()


def test_wrong_parent(store):
    Node.objects.filter(path="docs/a.txt").update(parent=Node.objects.get(path="other"))
    assert kinds(integrity.check()) == ["parent"]


def test_missing_parent(store):
    Node.objects.filter(path="docs/a.txt").update(parent=None)
    assert kinds(integrity.check()) == ["parent"]


def test_wrong_depth(store):
    Node.objects.filter(path="docs/a.txt").update(depth=5)
    report = integrity.check()
    assert kinds(report) == ["depth"] and "expected 2" in str(report.problems[0])


def test_root_with_a_parent(store):
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
        "versioned_items/ab/cd/not-a-checksum", "versioned_items/zz/file"]
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
