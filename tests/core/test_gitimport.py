"""versioned_items.gitimport and ``vi_import --git``: replaying a git repository's history."""

import os
import shutil
import subprocess
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from versioned_items import api
from versioned_items.exceptions import InvalidArgument
from versioned_items.gitimport import import_git

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

D1, D2, D3 = (datetime(2024, 1, day, 12, 0, tzinfo=UTC) for day in (1, 2, 3))


class Repo:
    """A throw-away git repository with commits of chosen authors and times."""

    # No user or system git configuration (identity, signing, hooks) leaks into the tests.
    ENV = {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Tester",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Tester",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def __init__(self, path):
        self.path = path
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args, env=None):
        return subprocess.run(
            ["git", "-C", str(self.path), *args],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **self.ENV, **(env or {})},
        ).stdout.strip()

    def commit(self, message, author, when, files):
        """Write (content) or remove (None) files, then commit them; return the commit id."""
        for name, content in files.items():
            file = self.path / name
            if content is None:
                self.git("rm", "-q", name)
                continue
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(content.encode() if isinstance(content, str) else content)
            self.git("add", name)
        stamp = when.isoformat()
        env = {
            "GIT_AUTHOR_NAME": author,
            "GIT_AUTHOR_EMAIL": f"{author}@example.com",
            "GIT_COMMITTER_NAME": author,
            "GIT_COMMITTER_EMAIL": f"{author}@example.com",
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
        }
        self.git("commit", "-q", "--allow-empty", "-m", message, env=env)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    repo = Repo(tmp_path / "repo")
    repo.ids = [
        repo.commit("Add a and b\n\nWith a body.", "Ann", D1, {"a.txt": "one\n", "docs/b.txt": "bee\n"}),
        repo.commit("Change a, drop b", "Bob", D2, {"a.txt": "one\ntwo\n", "docs/b.txt": None}),
        repo.commit(
            "Bring b back, add a picture",
            "Ann",
            D3,
            {"docs/b.txt": "bee again\n", "img.bin": b"\x89PNG\x00\x01\x02"},
        ),
    ]
    return repo


def history(path):
    return [
        (v.get_cluster_display(), v.muser, api.get_attributes(v.serial).get("commit"))
        for v in api.versions(path).order_by("serial")
    ]


def test_every_commit_that_touches_a_file_becomes_a_version(repo):
    report = import_git(repo.path, under="src")
    assert (report.commits, report.known, report.versions, report.deleted) == (3, 0, 5, 1)
    c1, c2, c3 = repo.ids
    assert history("src/a.txt") == [("history", "Ann", c1), ("normal", "Bob", c2)]
    assert history("src/docs/b.txt") == [
        ("history", "Ann", c1),
        ("deleted", "Bob", c2),
        ("normal", "Ann", c3),
    ]
    assert api.open_content(api.lookup("src/a.txt")).read() == b"one\ntwo\n"
    assert api.open_content(api.lookup("src/img.bin")).read() == b"\x89PNG\x00\x01\x02"


def test_versions_carry_commit_time_id_and_message(repo):
    import_git(repo.path)
    first, second = api.versions("a.txt").order_by("serial")
    assert (first.mtime, second.mtime) == (D1, D2)
    assert api.get_attributes(first.serial) == {
        "commit": repo.ids[0],
        "message": "Add a and b\n\nWith a body.",
    }
    marker = api.versions("docs/b.txt").order_by("serial")[1]
    assert marker.is_delete_marker
    assert api.get_attributes(marker.serial)["message"] == "Change a, drop b"
    times = [v.mtime for v in api.versions("docs/b.txt").order_by("serial")]
    assert times == sorted(times)


def test_a_second_run_adds_only_new_commits(repo):
    import_git(repo.path)
    again = import_git(repo.path)
    assert (again.commits, again.known, again.versions) == (0, 3, 0)
    repo.commit("Later", "Cy", D3, {"a.txt": "three\n"})
    later = import_git(repo.path)
    assert (later.commits, later.known, later.versions) == (1, 3, 1)
    assert api.lookup("a.txt").muser == "Cy"


def test_merges_bring_their_changes_relative_to_the_first_parent(repo):
    repo.git("checkout", "-q", "-b", "side")
    side = repo.commit("Side work", "Dee", D3, {"side.txt": "s\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("Main work", "Ann", D3, {"a.txt": "main\n"})
    repo.git(
        "merge",
        "-q",
        "--no-edit",
        "side",
        env={"GIT_COMMITTER_DATE": D3.isoformat(), "GIT_AUTHOR_DATE": D3.isoformat()},
    )
    merge = repo.git("rev-parse", "HEAD")
    import_git(repo.path)
    assert [c for _, _, c in history("side.txt")] == [side, merge]


def test_symbolic_links_and_bad_names_are_skipped_with_a_warning(repo):
    os.symlink("a.txt", repo.path / "link")
    repo.git("add", "link")
    repo.commit("A link", "Ann", D3, {})
    report = import_git(repo.path)
    assert report.skipped == 1 and "link" in report.warnings[0]
    assert api.lookup_node("link") is None


def test_refuses_what_is_not_a_repository_or_a_commit(tmp_path, repo):
    with pytest.raises(InvalidArgument, match="not a directory"):
        import_git(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidArgument, match="git rev-parse failed"):
        import_git(tmp_path / "plain")
    with pytest.raises(InvalidArgument, match="names no commit"):
        import_git(repo.path, rev="no-such-branch")
    with pytest.raises(InvalidArgument, match="revision"):
        import_git(repo.path, rev="--all")


def test_command_replays_git_history(repo):
    out = StringIO()
    call_command("vi_import", git=str(repo.path), under="g", stdout=out)
    assert "commits 3 replayed" in out.getvalue()
    assert api.lookup("g/a.txt") is not None


def test_command_wants_a_directory_or_git_but_not_both(repo, tmp_path):
    with pytest.raises(CommandError, match="either"):
        call_command("vi_import")
    with pytest.raises(CommandError, match="either"):
        call_command("vi_import", str(tmp_path), git=str(repo.path))
    with pytest.raises(CommandError, match="not a directory"):
        call_command("vi_import", git=str(tmp_path / "missing"))
