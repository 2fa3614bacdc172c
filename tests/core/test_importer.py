"""vi_import: the library function and the command."""

import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from versioned_items import api
from versioned_items.exceptions import InvalidArgument, InvalidPath
from versioned_items.importer import import_directory
from versioned_items.models import Cluster, Version

from ..helpers import assert_statistics_exact, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.md").write_text("# beta")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    return root


def test_import_then_reimport_counts_changes(folder):
    report = import_directory(folder, under="imp", user="importer")
    assert (report.new, report.changed, report.deleted, report.unchanged, report.skipped) == (2, 0, 0, 0, 0)
    assert api.lookup("imp/sub/b.md").open().read() == b"# beta"
    assert api.lookup("imp/a.txt").muser == "importer"
    assert api.lookup_node("imp/.git/HEAD") is None

    serials = set(Version.objects.values_list("serial", flat=True))
    report = import_directory(folder, under="imp")
    assert (report.new, report.changed, report.unchanged) == (0, 0, 2)
    assert set(Version.objects.values_list("serial", flat=True)) == serials

    (folder / "a.txt").write_text("alpha 2")
    (folder / "sub" / "b.md").unlink()
    (folder / "c.txt").write_text("gamma")
    report = import_directory(folder, under="imp")
    assert (report.new, report.changed, report.deleted, report.unchanged) == (1, 1, 1, 0)
    assert api.lookup("imp/sub/b.md") is None
    assert api.lookup("imp/sub/b.md", cluster=Cluster.DELETED) is not None
    assert_statistics_exact()


def test_symlinks_leaving_the_folder_are_refused(folder, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, folder / "leak.txt")
    os.symlink(folder / "a.txt", folder / "inside.txt")
    os.symlink(tmp_path / "missing", folder / "dangling.txt")
    report = import_directory(folder)
    assert api.lookup_node("leak.txt") is None
    assert api.lookup("inside.txt").open().read() == b"alpha"
    assert report.skipped == 2
    assert any("leak.txt" in w and "outside" in w for w in report.warnings)
    assert any("dangling.txt" in w for w in report.warnings)


def test_bad_arguments_write_nothing(folder):
    before = snapshot()
    with pytest.raises(InvalidArgument, match="not a directory"):
        import_directory(folder / "a.txt")
    with pytest.raises(InvalidPath):
        import_directory(folder, under="a/../b")
    with pytest.raises(InvalidArgument, match="batch_size"):
        import_directory(folder, batch_size=0)
    assert snapshot() == before


def test_command_prints_counts_and_warnings(folder, tmp_path):
    os.symlink(tmp_path, folder / "up")
    out, err = StringIO(), StringIO()
    call_command("vi_import", str(folder), "--under", "cmd", "--user", "cli", stdout=out, stderr=err)
    assert out.getvalue().strip() == "new 2, changed 0, deleted 0, unchanged 0, skipped 1"
    assert "outside" in err.getvalue()
    with pytest.raises(CommandError, match="not a directory"):
        call_command("vi_import", str(folder / "nope"))
    with pytest.raises(CommandError, match="segment"):
        call_command("vi_import", str(folder), "--under", "x//y")


def test_batches_group_writes(folder):
    for i in range(7):
        (folder / f"n{i}.txt").write_text(str(i))
    report = import_directory(folder, batch_size=3)
    assert report.new == 9
    assert_statistics_exact()
