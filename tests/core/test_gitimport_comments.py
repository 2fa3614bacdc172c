"""versioned_items.gitimport: each commit's message becomes the change comment of its versions
and delete markers (cut and cleaned so that no message stops an import)."""

import shutil
from datetime import UTC, datetime

import pytest

from versioned_items import api
from versioned_items.gitimport import commit_comment, import_git
from versioned_items.validation import MAX_COMMENT_LENGTH

from .test_gitimport import Repo

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

D1, D2 = (datetime(2024, 1, day, 12, 0, tzinfo=UTC) for day in (1, 2))


def comments(path):
    return [(v.get_cluster_display(), v.comment) for v in api.versions(path).order_by("serial")]


def test_commit_messages_are_the_comments_of_versions_and_markers(tmp_path):
    repo = Repo(tmp_path / "repo")
    repo.commit("Add the plan\n\nA longer body.", "Ann", D1, {"plan.txt": "one\n", "old.txt": "x\n"})
    repo.commit("Drop old.txt, extend the plan", "Bob", D2, {"plan.txt": "one\ntwo\n", "old.txt": None})
    import_git(repo.path, under="src")
    assert comments("src/plan.txt") == [
        ("history", "Add the plan\n\nA longer body."),
        ("normal", "Drop old.txt, extend the plan"),
    ]
    assert comments("src/old.txt") == [
        ("history", "Add the plan\n\nA longer body."),
        ("deleted", "Drop old.txt, extend the plan"),
    ]


def test_a_long_message_is_cut_and_kept_whole_in_the_attribute(tmp_path):
    repo = Repo(tmp_path / "repo")
    message = "Summary\n\n" + "word " * 1000
    repo.commit(message, "Ann", D1, {"a.txt": "a\n"})
    import_git(repo.path)
    version = api.lookup("a.txt")
    assert len(version.comment) <= MAX_COMMENT_LENGTH and version.comment.endswith("word…")
    assert version.comment.startswith("Summary\n\nword word")
    assert api.get_attributes(version.serial)["message"] == message.strip()


def test_commit_comment_replaces_control_characters():
    assert commit_comment("red \x1b[31mtext\x1b[0m\ttab\nline") == "red \ufffd[31mtext\ufffd[0m\ttab\nline"
    assert commit_comment("") == ""
